package mkiso

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
)

const sparsePiece = 4096

var zeros = make([]byte, chunkSize)

// output writes the image in increasing offset order; pos is the end of
// what has been written. When sparse, all-zero pieces are skipped (the
// caller truncates the file to its final size).
type output struct {
	w      io.WriterAt
	sparse bool
	pos    int64
}

func (o *output) writeAt(p []byte, off int64) error {
	if !o.sparse {
		_, err := o.w.WriteAt(p, off)
		return err
	}
	start := -1 // start of the pending non-zero run
	for i := 0; i < len(p); i += sparsePiece {
		piece := p[i:min(i+sparsePiece, len(p))]
		if bytes.Equal(piece, zeros[:len(piece)]) {
			if start >= 0 {
				if _, err := o.w.WriteAt(p[start:i], off+int64(start)); err != nil {
					return err
				}
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		_, err := o.w.WriteAt(p[start:], off+int64(start))
		return err
	}
	return nil
}

// zeroTo fills [pos, end) with zeros (nothing when sparse).
func (o *output) zeroTo(end int64) error {
	for !o.sparse && o.pos < end {
		n := min(end-o.pos, chunkSize)
		if _, err := o.w.WriteAt(zeros[:n], o.pos); err != nil {
			return err
		}
		o.pos += n
	}
	o.pos = max(o.pos, end)
	return nil
}

type run struct{ off, n int64 }

// runs maps f's bytes, in file order, to image byte ranges.
func (w *writer) runs(f *node) []run {
	var rs []run
	e := f.ext
	if e[0].Unit > 0 {
		unit := int64(e[0].Unit) * w.bs
		stride := int64(e[0].Unit+e[0].Gap) * w.bs
		for off, k := int64(0), int64(0); off < f.size; off, k = off+unit, k+1 {
			rs = append(rs, run{e[0].Block*w.bs + k*stride, min(unit, f.size-off)})
		}
		return rs
	}
	for _, s := range e {
		if s.Length > 0 {
			rs = append(rs, run{s.Block * w.bs, s.Length})
		}
	}
	return rs
}

func (w *writer) writeData(o *output) error {
	files := append([]*node(nil), w.files...)
	sort.SliceStable(files, func(i, j int) bool { return files[i].ext[0].Block < files[j].ext[0].Block })
	buf := make([]byte, chunkSize)
	for _, f := range files {
		if f.size == 0 {
			continue
		}
		if err := w.copyFile(o, f, buf); err != nil {
			return err
		}
	}
	return nil
}

func (w *writer) copyFile(o *output, f *node, buf []byte) error {
	r, err := w.src.Open(f.path)
	if err != nil {
		return fmt.Errorf("mkiso: %w", err)
	}
	defer r.Close()
	var holes func(int64) (int64, int64, bool)
	ra, isRA := r.(io.ReaderAt)
	if o.sparse && isRA {
		holes = holeFinder(r, f.size)
	}
	var fileOff int64
	for _, rn := range w.runs(f) {
		if err := o.zeroTo(rn.off); err != nil {
			return err
		}
		for done := int64(0); done < rn.n; {
			n := min(rn.n-done, int64(len(buf)))
			if holes != nil {
				start, end, ok := holes(fileOff)
				switch {
				case !ok:
					holes = nil
				case start > fileOff:
					// A hole: the sparse output already reads as zeros.
					skip := min(start-fileOff, rn.n-done)
					done, fileOff = done+skip, fileOff+skip
					continue
				default:
					n = min(n, end-fileOff)
				}
			}
			if isRA {
				var got int
				got, err = ra.ReadAt(buf[:n], fileOff)
				if int64(got) == n {
					err = nil
				} else if err == nil {
					err = io.ErrUnexpectedEOF
				}
			} else {
				_, err = io.ReadFull(r, buf[:n])
			}
			if err != nil {
				if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
					return fmt.Errorf("%w: %s", errChanged, f.path)
				}
				return fmt.Errorf("mkiso: %s: %w", f.path, err)
			}
			if err := o.writeAt(buf[:n], rn.off+done); err != nil {
				return err
			}
			done, fileOff = done+n, fileOff+n
		}
		o.pos = rn.off + rn.n
	}
	return nil
}

func (w *writer) manifest() *Manifest {
	m := &Manifest{BlockSize: int(w.bs), VolumeBlocks: w.volBlocks, ImageSize: w.volBlocks * w.bs}
	for _, f := range w.files {
		fe := FileEntry{
			Path:    f.path,
			Size:    f.size,
			Alloc:   ceilDiv(f.size, w.bs) * w.bs,
			Extents: append([]Extent(nil), f.ext...),
			Offset:  f.ext[0].Block * w.bs,
		}
		fe.StartsMidSector = f.size > 0 && fe.Offset%sectorSize != 0
		m.Files = append(m.Files, fe)
	}
	return m
}
