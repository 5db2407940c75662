// keygate console: small enhancements. Every page works without them.
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") {
      fn();
    } else {
      document.addEventListener("DOMContentLoaded", fn);
    }
  }

  // Move focus to the element that asks for it: the one-time token panel,
  // or the summary of a form's errors.
  function focusRequested() {
    var el = document.querySelector("[data-focus]");
    if (el) {
      el.focus();
    }
  }

  // Copy buttons: shown only when this script runs.
  function copyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (btn) {
      var input = document.getElementById(btn.getAttribute("data-copy"));
      var status = document.getElementById(btn.getAttribute("data-copy-status"));
      var label = btn.querySelector("[data-copy-label]") || btn;
      if (!input) {
        return;
      }
      btn.hidden = false;
      function say(msg) {
        if (status) {
          status.textContent = msg;
        }
      }
      function copied() {
        label.textContent = "Copied";
        say("The token is copied to the clipboard.");
      }
      function fallback() {
        input.focus();
        input.select();
        try {
          if (document.execCommand("copy")) {
            copied();
            return;
          }
        } catch (e) {
          // fall through
        }
        say("The token is selected: press Ctrl+C (or ⌘C) to copy it.");
      }
      btn.addEventListener("click", function () {
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(input.value).then(copied, fallback);
        } else {
          fallback();
        }
      });
    });
    document.querySelectorAll("input.token-value").forEach(function (el) {
      el.addEventListener("focus", function () {
        el.select();
      });
    });
  }

  // The custom date shows only when "Custom date" is chosen.
  function expiryFields() {
    document.querySelectorAll("select[data-expiry]").forEach(function (sel) {
      var field = document.getElementById(sel.getAttribute("data-expiry"));
      var input = field && field.querySelector("input");
      if (!input) {
        return;
      }
      function sync() {
        var custom = sel.value === "custom";
        field.hidden = !custom;
        input.required = custom;
        if (!custom) {
          input.value = "";
        }
      }
      sync();
      sel.addEventListener("change", function () {
        sync();
        if (sel.value === "custom") {
          input.focus();
        }
      });
    });
  }

  ready(function () {
    copyButtons();
    expiryFields();
    focusRequested();
  });
})();
