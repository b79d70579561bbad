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

// PNG renders a preview of one label at the label's resolution, one pixel per
// printer dot: the QR code with the printer's module size and the text in the
// preview font. Text is limited to Windows-1252, as for PDF.
func PNG(t Template, d Data) ([]byte, error) {
	c, err := t.compile()
	if err != nil {
		return nil, err
	}
	r, err := c.resolve(FormatPNG, d)
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
		x, y := c.dots(f.X), c.dots(f.Y)
		if f.Kind != KindQR {
			if r.texts[i] != "" {
				drawText(img, x, y, c.dots(f.Height), r.texts[i])
			}
			continue
		}
		if qr == nil {
			var err error
			if qr, err = qrBitmap(r.payload); err != nil {
				return nil, c.fieldErrorf(i, "QR code: %v", err)
			}
		}
		m := f.Magnification
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

// drawText draws s with its cell top-left at (x, y), the cell h pixels high.
func drawText(img *image.Paletted, x, y, h int, s string) {
	scale := float64(h) / fontRows
	pos := func(origin int, cells int) int { return origin + int(float64(cells)*scale) }
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
				x0, x1 := pos(x, col+b), pos(x, col+b+1)
				y0, y1 := pos(y, row), pos(y, row+1)
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
