package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

// tableHeader is the table's columns. "events missing" and "events twice" are per consumer
// group: email / analytics / inventory-sync.
var tableHeader = []string{"fault", "load", "accepted", "rows", "lost", "oversold", "2nd order/key",
	"above limit", "stock drift", "events missing e/a/i", "events twice e/a/i", "converged", "after load", "result"}

// cells are one row's columns.
func cells(r Row) []string {
	if r.Err != nil {
		c := make([]string, len(tableHeader))
		c[0], c[1] = r.Fault, r.Load
		for i := 2; i < len(c)-1; i++ {
			c[i] = "-"
		}
		c[len(c)-1] = "ERROR"
		return c
	}
	o := r.Outcome
	converged, afterLoad := fmt.Sprintf("%.1f s", r.Converged.Seconds()), fmt.Sprintf("%.1f s", r.AfterLoad.Seconds())
	if r.Never {
		converged, afterLoad = "never", "never"
	}
	result := "ok"
	if r.Violated() {
		result = "VIOLATED"
	}
	drift := "0"
	if o.StockDrift != 0 {
		drift = fmt.Sprintf("%+d", o.StockDrift)
	}
	return []string{r.Fault, r.Load, fmt.Sprint(o.Accepted), fmt.Sprint(o.Rows), fmt.Sprint(o.Lost),
		fmt.Sprint(o.Oversold), fmt.Sprint(o.SecondOrders), fmt.Sprint(o.AboveLimit), drift,
		perGroup(o.EventsMissing), perGroup(o.EventsDuplicate), converged, afterLoad, result}
}

func perGroup(m map[string]int) string {
	parts := make([]string, len(consumerGroups))
	for i, g := range consumerGroups {
		parts[i] = fmt.Sprint(m[g.group])
	}
	return strings.Join(parts, "/")
}

// PrintTable writes the rows as an aligned text table.
func PrintTable(w io.Writer, rows []Row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(tableHeader, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(cells(r), "\t"))
	}
	_ = tw.Flush()
}

// PrintMarkdown writes the rows as a Markdown table (docs/reliability.md).
func PrintMarkdown(w io.Writer, rows []Row) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(tableHeader, " | "))
	fmt.Fprintf(w, "|%s\n", strings.Repeat("---|", len(tableHeader)))
	for _, r := range rows {
		c := cells(r)
		c[0] = "`" + c[0] + "`"
		if c[len(c)-1] != "ok" {
			c[len(c)-1] = "**" + c[len(c)-1] + "**"
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(c, " | "))
	}
}

// PrintDetails writes, per row, the violations in words and the notes (injection timeline,
// statuses, figures beyond the table) and where its logs are.
func PrintDetails(w io.Writer, rows []Row) {
	for _, r := range rows {
		fmt.Fprintf(w, "\n%s (%s): %s\n", r.Fault, r.Title, summaryLine(r))
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  %s\n", n)
		}
		if _, err := os.Stat(r.LogDir); err == nil {
			fmt.Fprintf(w, "  logs: %s\n", r.LogDir)
		}
	}
}

// WriteJSON writes the rows to path.
func WriteJSON(path string, rows []Row) error {
	type jsonRow struct {
		Row
		Err        string   `json:"error,omitempty"`
		Violations []string `json:"violations"`
		Violated   bool     `json:"violated"`
		ConvergedS float64  `json:"convergedSeconds"`
		AfterLoadS float64  `json:"afterLoadSeconds"`
	}
	out := make([]jsonRow, len(rows))
	for i, r := range rows {
		out[i] = jsonRow{Row: r, Violations: r.Outcome.Violations(), Violated: r.Violated(), ConvergedS: r.Converged.Seconds(),
			AfterLoadS: r.AfterLoad.Seconds()}
		if r.Err != nil {
			out[i].Err = r.Err.Error()
		}
		out[i].Row.Err = nil
	}
	raw, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, raw, 0o600)
}
