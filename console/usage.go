package console

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keygate/keygate"
	"github.com/keygate/keygate/store"
)

// The windows of the usage shown: the key page's chart and the list's
// sparklines, in days up to today.
const (
	chartDays = 30
	sparkDays = 7
)

// day is a day's bucket.
const day = 24 * time.Hour

// lastDays returns the request of the usage of the last n days at now,
// today included.
func lastDays(n int, now time.Time) keygate.UsageRequest {
	return keygate.UsageRequest{Bucket: day, From: now.Add(-time.Duration(n-1) * day), To: now}
}

// chartView is a key's usage over the last chartDays as the key page
// shows it: a bar chart in SVG, drawn on the server (no script; its
// geometry is in presentation attributes, its colours in the console's
// stylesheet, so the CSP holds), valid and refused verifications stacked,
// told apart by a fill and a hatch as well as by colour, with a text
// alternative and a table of the same figures.
type chartView struct {
	Days int
	// Empty is set when nothing was counted: the page says so instead.
	Empty bool
	// Total, Valid and Refused are the window's figures, written out.
	Total, Valid, Refused string
	// Refusals are the refused verifications by outcome, most first.
	Refusals []countView
	// Desc summarizes the chart in words, for its text alternative.
	Desc string
	// Width and Height are the SVG's viewBox; the plot is drawn inside
	// the margins the ticks and labels take: from PlotLeft to PlotRight,
	// the counts' labels ending at TickLabelX, the days' at DayLabelY.
	Width, Height         int
	PlotLeft, PlotRight   int
	TickLabelX, DayLabelY int
	Bars                  []barView
	Ticks                 []tickView
	Labels                []labelView
	// Rows are the table of daily figures.
	Rows []dayRow
}

// countView is a number of verifications with one outcome.
type countView struct {
	Outcome, Label, Count string
}

// barView is one day's bar: the valid part at the bottom, the refused
// part stacked on it. Numbers are SVG user units, written out.
type barView struct {
	X, Width                string
	ValidY, ValidHeight     string
	RefusedY, RefusedHeight string
	HasValid, HasRefused    bool
	Title                   string
	// Zero marks a sparkline's day without any: drawn as a baseline.
	Zero bool
}

// tickView is a line across the plot at a count, with its label.
type tickView struct {
	Y, LabelY, Label string
}

// labelView is a day's label under its bar.
type labelView struct {
	X, Label string
}

// dayRow is one day of the table.
type dayRow struct {
	Day, ISO, Valid, Refused, Detail string
}

// Geometry of the chart, in SVG user units.
const (
	chartWidth  = 960
	chartHeight = 200
	plotLeft    = 48 // room for the count labels
	plotRight   = 8
	plotTop     = 10
	plotBottom  = 26 // room for the day labels
)

// outcomeLabels name the outcomes in words.
var outcomeLabels = map[string]string{
	keygate.OutcomeValid:                  "valid",
	keygate.OutcomeInvalid:                "old or unknown secret",
	keygate.OutcomeExpired:                "expired",
	keygate.OutcomeRevoked:                "revoked",
	keygate.OutcomeDisabled:               "disabled",
	keygate.OutcomeUsageExhausted:         "out of uses",
	keygate.OutcomeRateLimited:            "over the rate limit",
	keygate.OutcomeAddressDenied:          "address not allowed",
	keygate.OutcomeInsufficientPermission: "permission lacking",
	keygate.OutcomeUnavailable:            "store unavailable",
}

// outcomeLabel names outcome in words.
func outcomeLabel(outcome string) string {
	if l, ok := outcomeLabels[outcome]; ok {
		return l
	}
	return strings.ReplaceAll(outcome, "_", " ")
}

// refusals returns the refused verifications of c by outcome, most first.
func refusals(c keygate.UsageCounts) []countView {
	var out []countView
	outcomes := keygate.UsageOutcomes()
	for _, o := range outcomes {
		if n := c[o]; n > 0 && o != keygate.OutcomeValid {
			out = append(out, countView{Outcome: o, Label: outcomeLabel(o), Count: formatCount(n)})
		}
	}
	slices.SortStableFunc(out, func(a, b countView) int { return int(c[b.Outcome] - c[a.Outcome]) })
	return out
}

// describeRefusals writes refusals as "30 over the rate limit, 4
// expired".
func describeRefusals(rs []countView) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.Count + " " + r.Label
	}
	return strings.Join(parts, ", ")
}

// newChart returns the chart of u, a report in daily buckets.
func newChart(u *keygate.Usage) *chartView {
	v := &chartView{Days: len(u.Buckets), Width: chartWidth, Height: chartHeight,
		PlotLeft: plotLeft, PlotRight: chartWidth - plotRight, TickLabelX: plotLeft - 6, DayLabelY: chartHeight - 8,
		Total: formatCount(u.Totals.Total()), Valid: formatCount(u.Totals[keygate.OutcomeValid]),
		Refused: formatCount(u.Totals.Refused()), Refusals: refusals(u.Totals)}
	if u.Totals.Total() == 0 || len(u.Buckets) == 0 {
		v.Empty = true
		return v
	}
	var peak int64
	var peakDay time.Time
	for _, b := range u.Buckets {
		if n := b.Counts.Total(); n > peak {
			peak, peakDay = n, b.Start
		}
	}
	top := niceCeil(peak)
	plotW := float64(chartWidth - plotLeft - plotRight)
	plotH := float64(chartHeight - plotTop - plotBottom)
	base := float64(chartHeight - plotBottom)
	step := plotW / float64(len(u.Buckets))
	gap := min(step*0.2, 4)
	y := func(n int64) float64 { return base - plotH*float64(n)/float64(top) }
	for _, n := range []int64{0, top / 2, top} {
		v.Ticks = append(v.Ticks, tickView{Y: units(y(n)), LabelY: units(y(n) + 4), Label: formatCount(n)})
	}
	for i, b := range u.Buckets {
		valid, refused := b.Counts[keygate.OutcomeValid], b.Counts.Refused()
		x := float64(plotLeft) + float64(i)*step + gap/2
		bar := barView{X: units(x), Width: units(step - gap), HasValid: valid > 0, HasRefused: refused > 0,
			ValidY: units(y(valid)), ValidHeight: units(base - y(valid)),
			RefusedY: units(y(valid + refused)), RefusedHeight: units(y(valid) - y(valid+refused)),
			Title: formatDay(b.Start) + ": " + formatCount(valid) + " valid, " + formatCount(refused) + " refused"}
		v.Bars = append(v.Bars, bar)
		// A label every week, counted back from today's bar.
		if (len(u.Buckets)-1-i)%7 == 0 {
			v.Labels = append(v.Labels, labelView{X: units(x + (step-gap)/2), Label: b.Start.UTC().Format("2 Jan")})
		}
		row := dayRow{Day: formatDay(b.Start), ISO: b.Start.UTC().Format(time.DateOnly), Valid: formatCount(valid), Refused: formatCount(refused),
			Detail: describeRefusals(refusals(b.Counts))}
		v.Rows = append(v.Rows, row)
	}
	v.Desc = fmt.Sprintf("%s verifications in the last %d days: %s valid, %s refused", v.Total, v.Days, v.Valid, v.Refused)
	if len(v.Refusals) > 0 {
		v.Desc += " (" + describeRefusals(v.Refusals) + ")"
	}
	v.Desc += fmt.Sprintf(". Busiest day: %s, with %s.", formatDay(peakDay), formatCount(peak))
	return v
}

// formatDay writes the day starting at t, such as "7 Dec 2026" (UTC).
// Unlike formatDate, which writes an expiry at midnight as the end of the
// day before, it names the day that starts then.
func formatDay(t time.Time) string {
	return t.UTC().Format("2 Jan 2006")
}

// niceCeil returns the smallest of 1, 2 and 5 times a power of ten, or an
// even number below 10, that is at least n (and at least 2): the top of
// the chart's scale, so that its ticks are round numbers.
func niceCeil(n int64) int64 {
	if n <= 2 {
		return 2
	}
	if n <= 10 {
		return n + n%2
	}
	for p := int64(10); ; p *= 10 {
		for _, m := range []int64{1, 2, 5} {
			if m*p >= n {
				return m * p
			}
		}
	}
}

// units writes an SVG coordinate, to a tenth.
func units(f float64) string {
	return strconv.FormatFloat(f, 'f', 1, 64)
}

// formatCount writes n with thousands separators: "1,234".
func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// sparkView is a key's usage over the last sparkDays as the list shows
// it: a small bar chart, with its figures in words for its text
// alternative and the total beside it.
type sparkView struct {
	Total, Refused string
	HasRefused     bool
	Label          string
	Bars           []barView
}

// Geometry of a sparkline.
const (
	sparkWidth  = 70
	sparkHeight = 20
)

// newSpark returns the sparkline of u, a report in daily buckets.
func newSpark(u *keygate.Usage) *sparkView {
	v := &sparkView{Total: formatCount(u.Totals.Total()), Refused: formatCount(u.Totals.Refused()), HasRefused: u.Totals.Refused() > 0}
	var peak int64
	days := make([]string, len(u.Buckets))
	for i, b := range u.Buckets {
		peak = max(peak, b.Counts.Total())
		days[i] = formatCount(b.Counts.Total())
	}
	v.Label = fmt.Sprintf("Verifications per day over the last %d days, the oldest first: %s; %s refused.", len(u.Buckets), strings.Join(days, ", "), v.Refused)
	if len(u.Buckets) == 0 {
		return v
	}
	peak = max(peak, 1)
	step := float64(sparkWidth) / float64(len(u.Buckets))
	y := func(n int64) float64 { return float64(sparkHeight) - float64(sparkHeight-1)*float64(n)/float64(peak) }
	for i, b := range u.Buckets {
		valid, refused := b.Counts[keygate.OutcomeValid], b.Counts.Refused()
		bar := barView{X: units(float64(i)*step + 1), Width: units(step - 2), HasValid: valid > 0, HasRefused: refused > 0,
			ValidY: units(y(valid)), ValidHeight: units(float64(sparkHeight) - y(valid)),
			RefusedY: units(y(valid + refused)), RefusedHeight: units(y(valid) - y(valid+refused))}
		// A day without any is a baseline, so the days stay countable.
		bar.Zero = valid+refused == 0
		v.Bars = append(v.Bars, bar)
	}
	return v
}

// keyUsage returns the key page's chart of rec, nil when the store keeps
// no usage history.
func (c *Console) keyUsage(q *request, rec *store.Key) (*chartView, error) {
	u, err := c.manager.Usage(q.r.Context(), q.by, rec.ID, lastDays(chartDays, q.now))
	switch {
	case errors.Is(err, keygate.ErrUnsupported):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return newChart(u), nil
}

// listUsage returns the sparklines of keys, by id, in one store query;
// nil when the store keeps no usage history.
func (c *Console) listUsage(ctx context.Context, by keygate.Principal, keys []*store.Key, now time.Time) (map[uuid.UUID]*sparkView, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	reports, err := c.manager.KeysUsage(ctx, by, keys, lastDays(sparkDays, now))
	switch {
	case errors.Is(err, keygate.ErrUnsupported):
		return nil, nil
	case err != nil:
		return nil, err
	}
	out := make(map[uuid.UUID]*sparkView, len(reports))
	for id, u := range reports {
		out[id] = newSpark(u)
	}
	return out, nil
}
