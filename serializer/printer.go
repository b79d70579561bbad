package serializer

// Printer states: what a station's printer reports about itself. The station
// package reports them, the operator page and the metrics show them.
const (
	PrinterReady      = "ready"       // can print
	PrinterPaperOut   = "paper_out"   // out of labels
	PrinterHeadOpen   = "head_open"   // print head or cover open
	PrinterPaused     = "paused"      // paused by the operator
	PrinterRibbonOut  = "ribbon_out"  // out of ribbon
	PrinterBufferFull = "buffer_full" // receive buffer full
	PrinterOffline    = "offline"     // cannot be reached
	PrinterFaulted    = "faulted"     // reachable but not working (no reply, jam, error)
	PrinterUnknown    = "unknown"     // not checked yet, or the printer reports nothing
)

// PrinterStates lists every printer state, in the order they are shown.
var PrinterStates = []string{
	PrinterReady, PrinterPaperOut, PrinterHeadOpen, PrinterPaused, PrinterRibbonOut,
	PrinterBufferFull, PrinterOffline, PrinterFaulted, PrinterUnknown,
}
