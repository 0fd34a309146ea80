package graph

import (
	"bytes"
	"crypto/sha256"
	"fmt"
)

// ImageKind names the two image slots of a profile.
type ImageKind int

const (
	ProfileImage ImageKind = iota
	ThumbnailImage
)

// Limit is the size limit of the slot in bytes.
func (k ImageKind) Limit() int {
	if k == ThumbnailImage {
		return MaxThumbnailSize
	}
	return MaxImageSize
}

// CheckImage checks that img is a PNG or JPEG within the slot's size limit
// whose SHA-256 equals hash.
func CheckImage(kind ImageKind, img, hash []byte) error {
	if len(img) > kind.Limit() {
		return fmt.Errorf("%d bytes, limit %d", len(img), kind.Limit())
	}
	if !IsPNGOrJPEG(img) {
		return fmt.Errorf("not a PNG or JPEG image")
	}
	sum := sha256.Sum256(img)
	if !bytes.Equal(sum[:], hash) {
		return fmt.Errorf("SHA-256 %x does not match the profile's hash %x", sum[:], hash)
	}
	return nil
}

// IsPNGOrJPEG reports whether img starts like a PNG or a JPEG file.
func IsPNGOrJPEG(img []byte) bool {
	return bytes.HasPrefix(img, []byte("\x89PNG\r\n\x1a\n")) || bytes.HasPrefix(img, []byte{0xff, 0xd8, 0xff})
}

// HashImage returns the SHA-256 of img, or nil for no image.
func HashImage(img []byte) []byte {
	if len(img) == 0 {
		return nil
	}
	sum := sha256.Sum256(img)
	return sum[:]
}
