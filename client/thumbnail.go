package client

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/draw"

	"github.com/iop-go/iop/graph"
)

// MakeThumbnail scales a PNG or JPEG image down to a thumbnail within the
// protocol's 5 KiB limit, trying smaller sizes and JPEG qualities until it
// fits.
func MakeThumbnail(img []byte) ([]byte, error) {
	src, _, err := image.Decode(bytes.NewReader(img))
	if err != nil {
		return nil, fmt.Errorf("thumbnail: decode image: %w", err)
	}
	b := src.Bounds()
	for _, side := range []int{128, 96, 64, 48, 32} {
		w, h := b.Dx(), b.Dy()
		if w > side || h > side {
			if w >= h {
				w, h = side, max(1, h*side/w)
			} else {
				w, h = max(1, w*side/h), side
			}
		}
		dst := image.NewRGBA(image.Rect(0, 0, w, h))
		draw.CatmullRom.Scale(dst, dst.Bounds(), src, b, draw.Over, nil)
		var out bytes.Buffer
		if err := png.Encode(&out, dst); err == nil && out.Len() <= graph.MaxThumbnailSize {
			return out.Bytes(), nil
		}
		for _, q := range []int{80, 60, 40} {
			out.Reset()
			if err := jpeg.Encode(&out, dst, &jpeg.Options{Quality: q}); err == nil && out.Len() <= graph.MaxThumbnailSize {
				return out.Bytes(), nil
			}
		}
	}
	return nil, fmt.Errorf("thumbnail: cannot fit the image in %d bytes", graph.MaxThumbnailSize)
}
