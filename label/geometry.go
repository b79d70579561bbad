package label

import "fmt"

// symbol is a laid-out symbol: where its modules print and the quiet zone kept
// free around them.
type symbol struct {
	ink     rect
	module  int // dots per module
	modules int // QR: modules a side
	quiet   int // dots of quiet zone on each side
}

// qrQuietModules is the QR quiet zone, in modules on each side (ISO/IEC 18004).
const qrQuietModules = 4

// qrMaxModuleDots is the largest QR module ZPL (^BQ magnification) and TSPL
// (QRCODE cell width) print: 10 dots.
const qrMaxModuleDots = 10

// labelRect returns the whole label and the part of it inside the margin.
func (c *compiled) labelRect() (whole, inner rect) {
	whole = rect{0, 0, c.dots(c.Width), c.dots(c.Height)}
	m := c.margin()
	return whole, rect{c.dots(m), c.dots(m), c.dots(c.Width - m), c.dots(c.Height - m)}
}

// qrSymbol lays out QR field i for payload.
func (c *compiled) qrSymbol(i int, payload string) (symbol, error) {
	f := c.Fields[i]
	mode, n := qrMode(payload)
	v := qrVersion(mode, n)
	if v == 0 {
		return symbol{}, c.fieldErrorf(i, "payload %s is %d %s: too long for any QR code", quote(payload), n, mode)
	}
	side := qrModules(v)
	m, err := c.moduleDots(i, side, qrMaxModuleDots)
	if err != nil {
		return symbol{}, err
	}
	x, y := c.dots(f.X), c.dots(f.Y)
	s := symbol{ink: rect{x, y, x + side*m, y + side*m}, module: m, modules: side, quiet: qrQuietModules * m}
	if f.Size > 0 && side*m > c.dots(f.Size) {
		return symbol{}, c.fieldErrorf(i, "payload %s (%d %s) needs a %d×%d-module QR code, %.3g mm at %d-dot (%.2g mm) modules, "+
			"larger than its %g mm size", quote(payload), n, mode, side, side, c.mm(side*m), m, c.mm(m), f.Size)
	}
	return s, nil
}

// checkGeometry checks every field against the label and the others: text boxes
// and symbols inside the label's margin, quiet zones inside the label, and no
// field on another's box or quiet zone.
func (c *compiled) checkGeometry(syms []symbol) error {
	whole, inner := c.labelRect()
	zone := func(i int) rect {
		if c.Fields[i].Kind.symbol() {
			return syms[i].ink.grow(syms[i].quiet)
		}
		return c.boxes[i].r
	}
	what := func(i int) string {
		if c.Fields[i].Kind.symbol() {
			return fmt.Sprintf("the %s symbol %s with its %d-module quiet zone", c.Fields[i].Kind, c.rectMM(syms[i].ink), syms[i].quiet/syms[i].module)
		}
		return "the text box " + c.rectMM(c.boxes[i].r)
	}
	for i, f := range c.Fields {
		if f.Kind.symbol() {
			if !syms[i].ink.within(inner) {
				return c.fieldErrorf(i, "its symbol %s runs into the %g mm margin of the %g × %g mm label",
					c.rectMM(syms[i].ink), c.margin(), c.Width, c.Height)
			}
			if !zone(i).within(whole) {
				return c.fieldErrorf(i, "its quiet zone of %d modules (%.2g mm) around %s runs off the label",
					syms[i].quiet/syms[i].module, c.mm(syms[i].quiet), c.rectMM(syms[i].ink))
			}
		} else if !c.boxes[i].r.within(inner) {
			return c.fieldErrorf(i, "its box %s runs into the %g mm margin of the %g × %g mm label",
				c.rectMM(c.boxes[i].r), c.margin(), c.Width, c.Height)
		}
		for j := range i {
			// Two quiet zones may share paper; nothing else may.
			a, b := zone(i), zone(j)
			if c.Fields[i].Kind.symbol() && c.Fields[j].Kind.symbol() {
				if !syms[i].ink.overlaps(b) && !syms[j].ink.overlaps(a) {
					continue
				}
			} else if !a.overlaps(b) {
				continue
			}
			return c.errorf("field %d (%s) and field %d (%s) overlap: %s, %s", j+1, c.Fields[j].Kind, i+1, f.Kind, what(j), what(i))
		}
	}
	return nil
}
