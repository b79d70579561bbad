package label

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"sync"
)

// previewPalette is the two colours of a thermal label: white paper, black print.
var previewPalette = color.Palette{color.White, color.Black}

// pngEncoder reuses its compression buffers across previews.
var pngEncoder = png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &pngBuffers{}}

// pngBuffers is a png.EncoderBufferPool over a sync.Pool.
type pngBuffers struct{ pool sync.Pool }

func (p *pngBuffers) Get() *png.EncoderBuffer {
	b, _ := p.pool.Get().(*png.EncoderBuffer)
	return b
}

func (p *pngBuffers) Put(b *png.EncoderBuffer) { p.pool.Put(b) }

// PNG renders a preview of one label as a ZPL printer prints it; see Preview.
func PNG(t Template, d Data) ([]byte, error) { return Preview(FormatZPL, t, d) }

// Preview renders a preview of one label as a printer of language lang (zpl, tspl
// or pdf) prints it, at the label's resolution, one pixel per printer dot: the
// symbols with the printer's module size and every line of text where that
// printer's layout puts it, as wide and as high as its font prints it, drawn in
// the preview font. A field shrunk, wrapped or cut short on the label is shrunk,
// wrapped or cut short in the preview. Text is limited to Windows-1252, as for
// PDF.
func Preview(lang Format, t Template, d Data) ([]byte, error) {
	if lang == FormatPNG {
		lang = FormatZPL
	}
	c, err := t.compile()
	if err != nil {
		return nil, err
	}
	r, err := c.resolve(lang, d, true)
	if err != nil {
		return nil, err
	}
	img, err := c.image(r)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := pngEncoder.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// image draws the resolved label on a two-colour image, one pixel per dot.
func (c *compiled) image(r resolved) (*image.Paletted, error) {
	img := image.NewPaletted(image.Rect(0, 0, c.dots(c.Width), c.dots(c.Height)), previewPalette)
	var qr [][]bool
	for i, f := range c.Fields {
		if f.Kind != KindQR {
			for _, l := range r.lines[i] {
				drawText(img, l.x, l.y, l.w, l.face.h, l.text)
			}
			continue
		}
		if qr == nil {
			var err error
			if qr, err = qrBitmap(r.payload); err != nil {
				return nil, c.fieldErrorf(i, "QR code: %v", err)
			}
		}
		s := r.syms[i]
		x, y, m := s.ink.x0, s.ink.y0, s.module
		for row, line := range qr {
			for col, dark := range line {
				if dark {
					fillRect(img, x+col*m, y+row*m, x+(col+1)*m, y+(row+1)*m)
				}
			}
		}
	}
	return img, nil
}

// drawText draws s in the preview font into the w × h pixel box at (x, y): the
// line's width and height in the printer's font.
func drawText(img *image.Paletted, x, y, w, h int, s string) {
	cols := 0
	for _, r := range s {
		if g, ok := font[r]; ok {
			cols += g.width + fontAdvMin
		}
	}
	if cols == 0 {
		return
	}
	sx, sy := float64(w)/float64(cols), float64(h)/fontRows
	posX := func(c int) int { return x + int(float64(c)*sx) }
	posY := func(r int) int { return y + int(float64(r)*sy) }
	col := 0
	for _, r := range s {
		g, ok := font[r]
		if !ok {
			continue // checkText let through only characters the font has
		}
		for row, bits := range g.rows {
			for b := 0; bits != 0; b, bits = b+1, bits>>1 {
				if bits&1 == 0 {
					continue
				}
				x0, x1 := posX(col+b), posX(col+b+1)
				y0, y1 := posY(row), posY(row+1)
				fillRect(img, x0, y0, max(x1, x0+1), max(y1, y0+1))
			}
		}
		col += g.width + fontAdvMin
	}
}

// fillRect paints the rectangle [x0,x1) × [y0,y1) black, clipped to the image.
func fillRect(img *image.Paletted, x0, y0, x1, y1 int) {
	b := img.Rect
	x0, y0 = max(x0, b.Min.X), max(y0, b.Min.Y)
	x1, y1 = min(x1, b.Max.X), min(y1, b.Max.Y)
	for y := y0; y < y1; y++ {
		row := img.Pix[(y-b.Min.Y)*img.Stride:]
		for x := x0; x < x1; x++ {
			row[x-b.Min.X] = 1
		}
	}
}
