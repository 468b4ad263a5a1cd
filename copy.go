package mediafs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"

	"github.com/mediafs/mediafs/device"
)

// mediumRanger is implemented by the files of both drivers: it maps a
// range of a file to byte ranges of the volume's device.
type mediumRanger interface {
	MediumRanges(off, n int64) ([]device.Range, error)
}

type deviceHolder interface {
	Device() device.Device
}

// CopyTo writes the first size bytes of file, opened from fsys, to dst,
// and returns how many it wrote. Where the medium is a plain image file
// (no fault map, timeout or retries in between) the file's runs are copied
// in the kernel with sendfile(2), which spares copying every byte through
// user space twice; everything else, and anything sendfile does not
// complete, goes through ReadAt in len(buf)-byte reads, so that errors
// always name the file and the sector. progress, if not nil, is told of
// every chunk written.
//
// dst may be any writer; the kernel copy needs an *os.File.
func CopyTo(dst io.Writer, fsys FS, file fs.File, size int64, buf []byte, progress func(int64)) (int64, error) {
	var done int64
	if f, ok := dst.(*os.File); ok {
		done = sendfileRuns(f, fsys, file, size, progress)
		if done >= size {
			return done, nil
		}
	}
	ra, ok := file.(io.ReaderAt)
	if !ok {
		return done, errors.New("file does not support ReadAt")
	}
	n, err := CopyReaderAt(dst, io.NewSectionReader(ra, done, size-done), size-done, buf, progress)
	return done + n, err
}

// CopyReaderAt writes the first size bytes of r to dst in len(buf)-byte
// reads (1 MiB if buf is empty), so that they reach the medium as large
// runs. A reader that ends early is an io.ErrUnexpectedEOF that says where.
func CopyReaderAt(dst io.Writer, r io.ReaderAt, size int64, buf []byte, progress func(int64)) (int64, error) {
	if len(buf) == 0 {
		buf = make([]byte, min(1<<20, max(size, 1)))
	}
	var done int64
	for done < size {
		n, err := r.ReadAt(buf[:min(int64(len(buf)), size-done)], done)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return done, werr
			}
			done += int64(n)
			if progress != nil {
				progress(int64(n))
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if done >= size {
					break
				}
				return done, fmt.Errorf("file ended at byte %d of %d: %w", done, size, io.ErrUnexpectedEOF)
			}
			return done, err
		}
	}
	return done, nil
}

// sendfileRuns copies what it can of the file in the kernel and returns
// the number of bytes written; it stops, leaving the rest to ReadAt, at
// the first thing it cannot do.
func sendfileRuns(dst *os.File, fsys FS, file fs.File, size int64, progress func(int64)) int64 {
	mr, ok := file.(mediumRanger)
	if !ok || size <= 0 {
		return 0
	}
	dh, ok := fsys.(deviceHolder)
	if !ok {
		return 0
	}
	host, base, avail, ok := device.HostFile(dh.Device())
	if !ok {
		return 0
	}
	ranges, err := mr.MediumRanges(0, size)
	if err != nil {
		return 0
	}
	out, in := int(dst.Fd()), int(host.Fd())
	var done int64
	for _, r := range ranges {
		if r.Off < 0 || r.End() > avail {
			return done // beyond the host file: the device zero-fills it
		}
		off := base + r.Off
		for left := r.Len; left > 0; {
			n, err := unix.Sendfile(out, in, &off, int(min(left, 1<<30)))
			if err != nil || n <= 0 {
				return done
			}
			left -= int64(n)
			done += int64(n)
			if progress != nil {
				progress(int64(n))
			}
		}
	}
	return done
}

// salvageUnit is the step with which Salvage feels its way past a bad
// area: the smallest sector size, so that no readable byte is given up.
const salvageUnit = 512

// Salvage copies what can be read of the first size bytes of file to dst,
// going around the parts the medium cannot deliver: those are left as
// holes (zeros) in dst and returned as lost ranges of the file, with the
// first error, which names the file and the sector. Errors that are not
// media errors (a damaged cluster chain, say) end the copy there, and the
// rest of the file counts as lost.
func Salvage(dst *os.File, file fs.File, size int64, buf []byte, progress func(int64)) (lost []device.Range, firstErr error) {
	ra, ok := file.(io.ReaderAt)
	if !ok {
		return []device.Range{{Off: 0, Len: size}}, errors.New("file does not support ReadAt")
	}
	if len(buf) == 0 {
		buf = make([]byte, 1<<20)
	}
	addLost := func(off, n int64) { lost = device.AppendRange(lost, off, n) }
	write := func(p []byte, at int64) error {
		if _, err := dst.WriteAt(p, at); err != nil {
			return err
		}
		if progress != nil {
			progress(int64(len(p)))
		}
		return nil
	}
	var pos int64
	for pos < size {
		start := pos
		chunkEnd := min(start+int64(len(buf)), size)
		n, err := ra.ReadAt(buf[:chunkEnd-start], start)
		if n > 0 {
			if werr := write(buf[:n], start); werr != nil {
				return lost, werr
			}
			pos += int64(n)
		}
		if err == nil || (errors.Is(err, io.EOF) && pos >= chunkEnd) {
			pos = max(pos, chunkEnd)
			continue
		}
		if firstErr == nil {
			firstErr = err
		}
		if !device.IsMediaError(err) {
			addLost(pos, size-pos)
			break
		}
		// Go over the rest of the failed chunk unit by unit, so that every
		// readable unit is kept and the loop always moves on.
		for pos < chunkEnd {
			step := min(salvageUnit-pos%salvageUnit, chunkEnd-pos)
			k, err := ra.ReadAt(buf[:step], pos)
			switch {
			case err == nil || (errors.Is(err, io.EOF) && int64(k) == step):
				if werr := write(buf[:step], pos); werr != nil {
					return lost, werr
				}
			case device.IsMediaError(err):
				addLost(pos, step)
			default:
				addLost(pos, size-pos)
				pos = size
				continue
			}
			pos += step
		}
	}
	// Holes at the end need the file's length set.
	if err := dst.Truncate(size); err != nil && firstErr == nil {
		firstErr = err
	}
	return lost, firstErr
}
