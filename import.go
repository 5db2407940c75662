package keygate

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/google/uuid"

	"github.com/keygate/keygate/apikey"
	"github.com/keygate/keygate/store"
)

// MaxImportBatch is the most rows one [Manager.Import] call takes.
const MaxImportBatch = 1000

// ErrNotImportable means an import row's token could never verify here:
// a plaintext token neither of this Manager's format nor accepted by
// Config.ImportedTokens, or a SHA-256 row while Config.ImportedSHA256 is
// off. It wraps [ErrInvalidRequest] in the row's error.
var ErrNotImportable = errors.New("keygate: token not importable")

// ErrRetired means an import row's token is a retired secret: the secret
// of a key since regenerated (past any grace period), or revoked and
// deleted. A retired secret is never imported again, whoever sends it and
// however often. It wraps [ErrInvalidRequest] in the row's error.
var ErrRetired = errors.New("keygate: token retired")

// ImportRequest is one key brought from another system by
// [Manager.Import], without reissuing it: its holders keep using the
// token they have. Give exactly one of Token and SHA256.
//
// An ImportRequest never prints its secrets: its Token redacts itself,
// and Format and LogValue show SHA256 as "[REDACTED]" when set (it stands
// for the token: whoever holds it can confirm a guessed or leaked token).
type ImportRequest struct {
	// CreateRequest holds the key's name, description, owner, workspace,
	// role, scopes, metadata, expiry and limits, validated and authorized
	// as by [Manager.Create]. An ExpireAt in the past is refused: import
	// only keys that still work.
	CreateRequest
	// Token is the key's plaintext, from [apikey.ParseImported] for
	// another system's token, or [apikey.Parse] for a keygate one. It is
	// hashed under the current pepper on the way in, and never stored.
	Token apikey.Token
	// SHA256 is the hex SHA-256 of the key's plaintext, for a system that
	// kept nothing else. It is never stored as it is: the key is stored
	// under the digest HMAC'd with the current pepper until its first use,
	// when it is re-hashed under the current pepper like any key; the
	// Manager must have Config.ImportedSHA256 set (and, for tokens not of
	// its own format, Config.ImportedTokens). The peppered digest stays on
	// record (as a spent previous secret) so that the row is found a
	// duplicate after the first use too, until the key is revoked,
	// regenerated or deleted, which retire it: the row then fails with
	// [ErrRetired].
	//
	// A digest cannot be checked at import against keys that hold the
	// token itself (their hash needs it): a row of the SHA-256 of another
	// key's token makes a second key, which never verifies while the other
	// lives (a token is looked up under the peppers first), and which is
	// revoked at its first use if the other's secret has been retired
	// (the token is then answered as unknown).
	SHA256 string
	// Hint is the key's display hint for a SHA256 row (such as "sk_live_4f2a"),
	// shown until its first use replaces it with the token's own hint: at
	// most 16 printable ASCII characters, "" for none. A Token row takes its
	// hint from the token.
	Hint string
}

// Format implements [fmt.Formatter]: every verb prints r with SHA256
// redacted.
func (r ImportRequest) Format(f fmt.State, verb rune) {
	type plain ImportRequest // without this method
	v := plain(r)
	if v.SHA256 != "" {
		v.SHA256 = "[REDACTED]"
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), v)
}

// MarshalJSON encodes r with its token redacted and SHA256 as
// "[REDACTED]" when set.
func (r ImportRequest) MarshalJSON() ([]byte, error) {
	type plain ImportRequest // without this method
	v := plain(r)
	if v.SHA256 != "" {
		v.SHA256 = "[REDACTED]"
	}
	return json.Marshal(v)
}

// LogValue renders r for log/slog: its name, workspace, token (redacted),
// whether it has a SHA-256, and its hint.
func (r ImportRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("name", r.Name), slog.String("workspace", r.Workspace),
		slog.Any("token", r.Token), slog.Bool("sha256", r.SHA256 != ""), slog.String("hint", r.Hint))
}

// maxImportHint is the longest ImportRequest.Hint.
const maxImportHint = 16

// ImportStatus is what [Manager.Import] did with one row.
type ImportStatus string

// The outcomes of an import row.
const (
	// ImportCreated: the key was stored.
	ImportCreated ImportStatus = "imported"
	// ImportDuplicate: a key with this token (or SHA-256) is already
	// stored, by an earlier import or otherwise; nothing changed. Import
	// is therefore safe to retry. (A token whose key has since been
	// regenerated or deleted is a retired secret: its row fails with
	// ErrRetired.)
	ImportDuplicate ImportStatus = "duplicate"
	// ImportFailed: the row was refused; see ImportResult.Err.
	ImportFailed ImportStatus = "failed"
)

// ImportResult reports one row of [Manager.Import], at the row's index.
type ImportResult struct {
	// Status says what was done.
	Status ImportStatus
	// Key is the stored key: the new one, or for a duplicate the existing
	// one when the importer may view it (nil otherwise).
	Key *store.Key
	// Err says why the row failed: errors wrapping [ErrInvalidRequest]
	// (with ErrNotImportable, ErrRetired, ErrDuplicateName or a
	// validation error as for Create), a [*DeniedError] ([ErrForbidden])
	// for a key stronger than the importer, or [ErrUnavailable].
	Err error
}

// LogValue renders r for log/slog: the status, the key (without hashes)
// and the error.
func (r ImportResult) LogValue() slog.Value {
	v := []slog.Attr{slog.String("status", string(r.Status))}
	if r.Key != nil {
		v = append(v, slog.Any("key", *r.Key))
	}
	if r.Err != nil {
		v = append(v, slog.String("error", r.Err.Error()))
	}
	return slog.GroupValue(v...)
}

// Import stores keys issued by another system, so that their tokens keep
// working: by their plaintext (hashed under the current pepper, never
// stored) or by their SHA-256 (see [ImportRequest]). Each row is
// validated and authorized as [Manager.Create] would a new key: by needs
// apikey:manage in the row's workspace and every permission the key would
// hold, and may not give it a longer life or looser limits than its own.
//
// It returns one result per row, in order; a refused row does not stop
// the others. A row whose token is already stored is reported
// [ImportDuplicate] and changes nothing, so a batch cut short may be sent
// again whole. A row whose token is a retired secret (of a key since
// regenerated past any grace period, or deleted: see [store.Retirer])
// fails with [ErrRetired], however often it is sent. Only errors about
// the whole call are returned as the error: more than [MaxImportBatch]
// rows ([ErrInvalidRequest]), by refused ([*DeniedError]: lacking
// apikey:manage in every workspace, or a key principal no longer active
// or acting with an old secret), the store failing while checking by
// ([ErrUnavailable]), or a store that keeps no tombstones of retired
// secrets ([ErrUnsupported]: it does not implement store.Retirer, as
// every store of this module does), which Import refuses rather than risk
// bringing a retired secret back.
//
// A key imported by plaintext verifies at once if its token is of this
// Manager's format; any other needs Config.ImportedTokens to accept it,
// and a SHA-256 row needs Config.ImportedSHA256. At once means even for a
// token tried before and remembered as unknown, on this instance and on
// the others that share a Config.ChangeFeed (a new key is published to a
// feed that takes publications, and announced by the PostgreSQL store). Each stored key sends an
// EventImported audit event.
func (m *Manager) Import(ctx context.Context, by Principal, rows []ImportRequest) (_ []ImportResult, err error) {
	ctx, span := m.startSpan(ctx, "Import", uuid.Nil)
	defer endSpan(span, &err)
	if len(rows) > MaxImportBatch {
		return nil, errorf("keygate: import: %w: %w: %d rows, at most %d per call",
			ErrInvalidRequest, ErrInvalidField, len(rows), MaxImportBatch)
	}
	by, err = m.actor(ctx, by, true)
	if err != nil {
		return nil, err
	}
	if !by.SuperAdmin && !by.Permissions.Allows(m.manageKeys) {
		// It could import nothing anywhere.
		return nil, &DeniedError{Actor: by.ID, Reason: DeniedPermission, Permission: PermissionManageKeys, Workspace: by.Workspace}
	}
	if m.retirer == nil {
		// Fail closed: without tombstones a retired secret would come back.
		return nil, errorf("keygate: import: %w: the store keeps no tombstones of retired secrets (store.Retirer)", ErrUnsupported)
	}
	results := make([]ImportResult, len(rows))
	for i := range rows {
		if err := ctx.Err(); err != nil {
			results[i] = ImportResult{Status: ImportFailed, Err: errorf("keygate: import: %w: %w", ErrUnavailable, err)}
			continue
		}
		results[i] = m.importRow(ctx, &by, &rows[i])
	}
	return results, nil
}

// importRow imports one row for by.
func (m *Manager) importRow(ctx context.Context, by *Principal, row *ImportRequest) ImportResult {
	failed := func(err error) ImportResult { return ImportResult{Status: ImportFailed, Err: err} }
	rec, err := m.newRecord(ctx, by, &row.CreateRequest, m.clock())
	if err != nil {
		return failed(err)
	}
	var find func() (*store.Key, error)
	var forms []hashForm // how a key may hold the row's token, for the tombstones
	var d digest         // the token's SHA-256: its key in the verification caches
	plain := row.Token.Reveal()
	switch {
	case plain != "" && row.SHA256 != "":
		return failed(errorf("keygate: import: %w: %w: give a token or its SHA-256, not both", ErrInvalidRequest, ErrInvalidField))
	case plain != "":
		if _, err := m.format.Parse(plain); err != nil {
			if _, err := m.parseImported(plain, err); err != nil {
				return failed(errorf("keygate: import: %w: %w: neither of this Manager's format nor accepted by Config.ImportedTokens", ErrInvalidRequest, ErrNotImportable))
			}
		}
		if row.Hint != "" {
			return failed(errorf("keygate: import: %w: %w: a hint is taken from the token", ErrInvalidRequest, ErrInvalidField))
		}
		rec.Hash, rec.PepperID = m.hasher.Hash(row.Token)
		rec.Hint = row.Token.Hint()
		d = digestOf(plain)
		if forms, err = m.tokenForms(row.Token); err != nil {
			return failed(errorf("keygate: import: hash token: %w", err))
		}
		find = func() (*store.Key, error) {
			found, _, _, err := m.findToken(ctx, row.Token)
			return found, err
		}
	case row.SHA256 != "":
		if !m.digests && m.keyed {
			return failed(errorf("keygate: import: %w: %w: SHA-256 rows need Config.ImportedSHA256", ErrInvalidRequest, ErrNotImportable))
		}
		sum, err := hex.DecodeString(row.SHA256)
		if err != nil || len(sum) != 32 {
			return failed(errorf("keygate: import: %w: %w: sha256: want 64 hex digits", ErrInvalidRequest, ErrInvalidField))
		}
		if !printableHint(row.Hint) {
			return failed(errorf("keygate: import: %w: %w: hint: want at most %d printable ASCII characters", ErrInvalidRequest, ErrInvalidField, maxImportHint))
		}
		d = digest(sum)
		stored, err := m.storedDigest(sum)
		if err != nil {
			return failed(errorf("keygate: import: hash digest: %w", err))
		}
		rec.Hash, rec.PepperID, rec.Hint = stored.hash, stored.pepperID, row.Hint
		if forms, err = m.digestForms(sum); err != nil {
			return failed(errorf("keygate: import: hash digest: %w", err))
		}
		find = func() (*store.Key, error) { return m.findForms(ctx, forms) }
	default:
		return failed(errorf("keygate: import: %w: %w: a token or its SHA-256 is required", ErrInvalidRequest, ErrInvalidField))
	}
	duplicate := func(found *store.Key) ImportResult {
		r := ImportResult{Status: ImportDuplicate}
		if by.Allows(m.viewKeys, found.Workspace) {
			r.Key = found
		}
		return r
	}
	found, err := find()
	if err != nil {
		return failed(err)
	}
	if found != nil {
		return duplicate(found)
	}
	// Not held by any key: retired? (A retirement writes its tombstone
	// before it removes the hash from its key, so one under way is seen
	// here or above.)
	switch retired, err := m.anyRetired(ctx, forms); {
	case err != nil:
		return failed(err)
	case retired:
		return failed(errorf("keygate: import: %w: %w: the secret was regenerated, or revoked and deleted", ErrInvalidRequest, ErrRetired))
	}
	if rec.ID, err = uuid.NewV7(); err != nil {
		return failed(errorf("keygate: new key id: %w", err))
	}
	if err := m.store.Create(ctx, rec); err != nil {
		if errors.Is(err, store.ErrDuplicate) {
			// The same key imported at the same time by another call, or
			// the name taken.
			if found, ferr := find(); ferr == nil && found != nil {
				return duplicate(found)
			}
		}
		return failed(m.storeError("import key", err))
	}
	// The token may have been tried before, and be remembered as unknown:
	// here, and on the other instances, which the change feed tells.
	m.forgetUnknown(&d)
	m.publish(ctx, rec.ID)
	m.audit(ctx, EventImported, rec, by.ID, "")
	return ImportResult{Status: ImportCreated, Key: rec.Clone()}
}

// forgetUnknown drops d from the negative cache, and makes the lookups
// under way, which may have missed a key just created for it, neither
// fill the caches nor be joined by verifications beginning now.
func (m *Manager) forgetUnknown(d *digest) {
	m.unknown.forget(d)
	m.cache.epoch.Add(1)
}

// findForms returns the first key holding one of forms, as its current
// or previous secret, nil when there is none; only a store failure is an
// error ([ErrUnavailable]).
func (m *Manager) findForms(ctx context.Context, forms []hashForm) (*store.Key, error) {
	for _, f := range forms {
		rec, err := m.store.GetByHash(ctx, f.hash)
		switch {
		case errors.Is(err, store.ErrNotFound):
			continue
		case err != nil:
			return nil, errorf("keygate: look up key: %w: %w", ErrUnavailable, err)
		case rec.PepperID == f.pepperID && apikey.Equal(rec.Hash, f.hash),
			rec.PrevPepperID == f.pepperID && apikey.Equal(rec.PrevHash, f.hash):
			return rec, nil
		}
	}
	return nil, nil
}

// parseImported parses token as a key imported from another system, if
// Config.ImportedTokens accepts it; otherwise it returns parseErr, why
// the token is not of this Manager's format.
func (m *Manager) parseImported(token string, parseErr error) (apikey.Token, error) {
	if m.imported == nil {
		return apikey.Token{}, parseErr
	}
	tok, err := apikey.ParseImported(token)
	if err != nil || !m.imported(token) {
		return apikey.Token{}, parseErr
	}
	return tok, nil
}

// printableHint reports whether h is an acceptable ImportRequest.Hint.
func printableHint(h string) bool {
	if len(h) > maxImportHint {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; c < ' ' || c > '~' {
			return false
		}
	}
	return true
}
