package device

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Raw CD images carry whole 2352-byte sectors as the drive read them (ECMA-130
// sector formats), as preservation rips usually do ("BIN/CUE"). Each sector
// starts with a 12-byte sync pattern 00 FF×10 00 and a 4-byte header whose
// last byte is the mode:
//
//	Mode 1:         sync(12) header(4) user data(2048) EDC/ECC(288)
//	Mode 2 Form 1:  sync(12) header(4) subheader(8) user data(2048) EDC/ECC(280)
//	Mode 2 Form 2:  sync(12) header(4) subheader(8) user data(2324) EDC(4)
//
// A file system reads the 2048-byte user data of Mode 1 and Mode 2 Form 1
// sectors. Form 2 sectors (video and audio streams) hold no such data and
// read as an error naming the sector. MODE2/2336 images (no sync or header)
// are accepted when a cue sheet says so.

const (
	RawSectorSize = 2352
	cdSectorSize  = 2048
)

var cdSync = []byte{0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00}

// IsRawCD reports whether buf (the first bytes of an image) starts with the
// sync pattern of a raw 2352-byte CD sector.
func IsRawCD(buf []byte) bool {
	return len(buf) >= 16 && bytes.Equal(buf[:12], cdSync) && (buf[15] == 1 || buf[15] == 2)
}

// RawCD presents a raw CD image as a device of 2048-byte sectors.
type RawCD struct {
	f       *File // the .bin, opened read-only with its own unit irrelevant
	start   int64 // byte offset of the data track's first sector in the file
	stride  int   // 2352, or 2336 for MODE2/2336
	sectors int64
	pool    sync.Pool
}

// TrackMode names a raw track layout from a cue sheet.
type TrackMode string

const (
	Mode1Raw TrackMode = "MODE1/2352"
	Mode2Raw TrackMode = "MODE2/2352"
	Mode2XA  TrackMode = "MODE2/2336"
	Mode1Cok TrackMode = "MODE1/2048"
)

// OpenRawCD opens a raw .bin image (no cue sheet): the data track is assumed
// to start at byte 0, as it does on a single-track data disc.
func OpenRawCD(path string) (*RawCD, error) {
	f, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	return newRawCD(f, 0, RawSectorSize)
}

func newRawCD(f *File, start int64, stride int) (*RawCD, error) {
	n := (f.dataSize.Load() - start) / int64(stride)
	if n <= 0 {
		f.Close()
		return nil, fmt.Errorf("%s: no whole %d-byte sector after byte %d", f.name, stride, start)
	}
	r := &RawCD{f: f, start: start, stride: stride, sectors: n}
	r.pool.New = func() any { b := make([]byte, 64*stride); return &b }
	return r, nil
}

func (r *RawCD) SectorSize() int { return cdSectorSize }
func (r *RawCD) Size() int64     { return r.sectors * cdSectorSize }
func (r *RawCD) Sync() error     { return nil }
func (r *RawCD) Close() error    { return r.f.Close() }

func (r *RawCD) WriteAt(p []byte, off int64) (int, error) {
	return 0, &SectorError{Op: "write", Sector: off / cdSectorSize, Err: ErrReadOnly}
}

// ReadAt reads whole 2048-byte user-data sectors, batching raw reads.
func (r *RawCD) ReadAt(p []byte, off int64) (int, error) {
	if off%cdSectorSize != 0 || len(p)%cdSectorSize != 0 {
		return 0, &SectorError{Op: "read", Sector: off / cdSectorSize, Err: ErrUnaligned}
	}
	if err := checkRange("read", off, len(p), r.Size(), cdSectorSize); err != nil {
		return 0, err
	}
	bp := r.pool.Get().(*[]byte)
	defer r.pool.Put(bp)
	raw := *bp
	first := off / cdSectorSize
	total := len(p) / cdSectorSize
	per := len(raw) / r.stride
	done := 0
	for done < total {
		n := min(per, total-done)
		sec := first + int64(done)
		buf := raw[:n*r.stride]
		if _, err := r.f.ReadAt(buf, r.start+sec*int64(r.stride)); err != nil {
			var se *SectorError
			if errors.As(err, &se) {
				// Re-express the raw file position as a CD sector.
				rel := se.Sector*int64(r.f.sectorSize) - r.start
				return done * cdSectorSize, &SectorError{Op: "read", Sector: max(sec, rel/int64(r.stride)), Err: se.Err}
			}
			return done * cdSectorSize, &SectorError{Op: "read", Sector: sec, Err: err}
		}
		for i := 0; i < n; i++ {
			s := buf[i*r.stride : (i+1)*r.stride]
			data, err := r.userData(s)
			if err != nil {
				return (done + i) * cdSectorSize, &SectorError{Op: "read", Sector: sec + int64(i), Err: err}
			}
			copy(p[(done+i)*cdSectorSize:], data)
		}
		done += n
	}
	return len(p), nil
}

func (r *RawCD) userData(s []byte) ([]byte, error) {
	if r.stride == 2336 { // MODE2/2336: subheader(8) then data
		if s[2]&0x20 != 0 {
			return nil, errors.New("mode 2 form 2 sector holds no 2048-byte data")
		}
		return s[8 : 8+cdSectorSize], nil
	}
	if !bytes.Equal(s[:12], cdSync) {
		return nil, fmt.Errorf("%w: raw sector has no sync pattern", ErrBadSector)
	}
	switch s[15] {
	case 1:
		return s[16 : 16+cdSectorSize], nil
	case 2:
		if s[18]&0x20 != 0 { // subheader submode bit 5: form 2
			return nil, errors.New("mode 2 form 2 sector holds no 2048-byte data")
		}
		return s[24 : 24+cdSectorSize], nil
	case 0:
		return make([]byte, cdSectorSize), nil // mode 0: zero-filled sector
	default:
		return nil, fmt.Errorf("%w: raw sector of unknown mode %d", ErrBadSector, s[15])
	}
}

// OpenCue opens the first data track of a cue sheet. Audio tracks are
// skipped; MODE1/2048 tracks (cooked) are opened as plain 2048-byte images.
func OpenCue(path string) (Device, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	tr, err := parseCue(f, path)
	f.Close()
	if err != nil {
		return nil, err
	}
	bin := cueBinPath(path, tr.file)
	start := tr.frames * int64(tr.stride)
	if tr.stride != cdSectorSize {
		d, err := Open(bin, Options{ReadOnly: true})
		if err != nil {
			return nil, err
		}
		return newRawCD(d, start, tr.stride) // closes d on error
	}
	d, err := Open(bin, Options{ReadOnly: true, SectorSize: cdSectorSize})
	if err != nil {
		return nil, err
	}
	if start == 0 {
		return d, nil
	}
	if start >= d.Size() {
		d.Close()
		return nil, fmt.Errorf("%s:%d: the track starts at byte %d, at or beyond the end of %s (%d bytes)", path, tr.line, start, bin, d.Size())
	}
	return NewWindow(d, start, d.Size()-start)
}

// cueTrack is the first data track of a cue sheet: its FILE, the bytes
// per sector of its mode, and where INDEX 01 puts its first sector (in
// frames, that is sectors, from the start of the file).
type cueTrack struct {
	file   string
	stride int
	frames int64
	line   int // the INDEX line, for errors
}

// parseCue finds the first data track of the cue sheet r (named name in
// errors, with the line).
func parseCue(r io.Reader, name string) (cueTrack, error) {
	var (
		curFile string
		curMode string
		lineNo  int
	)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		lineNo++
		if lineNo > 10000 {
			break
		}
		fields := cueFields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FILE":
			if len(fields) < 2 {
				return cueTrack{}, fmt.Errorf("%s:%d: FILE without a name", name, lineNo)
			}
			curFile = fields[1]
		case "TRACK":
			if len(fields) < 3 {
				return cueTrack{}, fmt.Errorf("%s:%d: TRACK without a mode", name, lineNo)
			}
			curMode = strings.ToUpper(fields[2])
		case "INDEX":
			if len(fields) < 3 || fields[1] != "01" && fields[1] != "1" || curMode == "" || curMode == "AUDIO" {
				continue
			}
			frames, err := parseMSF(fields[2])
			if err != nil {
				return cueTrack{}, fmt.Errorf("%s:%d: %v", name, lineNo, err)
			}
			if curFile == "" {
				return cueTrack{}, fmt.Errorf("%s:%d: INDEX before any FILE", name, lineNo)
			}
			tr := cueTrack{file: curFile, frames: frames, line: lineNo}
			switch TrackMode(curMode) {
			case Mode1Raw, Mode2Raw:
				tr.stride = RawSectorSize
			case Mode2XA:
				tr.stride = 2336
			case Mode1Cok:
				tr.stride = cdSectorSize
			default:
				return cueTrack{}, fmt.Errorf("%s:%d: unsupported track mode %s", name, lineNo, curMode)
			}
			return tr, nil
		}
	}
	if err := sc.Err(); err != nil {
		return cueTrack{}, fmt.Errorf("%s: %w", name, err)
	}
	return cueTrack{}, fmt.Errorf("%s: no data track in cue sheet", name)
}

// cueFields splits a cue line into words, keeping quoted strings whole.
func cueFields(line string) []string {
	var out []string
	line = strings.TrimSpace(line)
	for line != "" {
		if line[0] == '"' {
			end := strings.IndexByte(line[1:], '"')
			if end < 0 {
				out = append(out, line[1:])
				break
			}
			out = append(out, line[1:1+end])
			line = strings.TrimSpace(line[2+end:])
			continue
		}
		end := strings.IndexAny(line, " \t")
		if end < 0 {
			out = append(out, line)
			break
		}
		out = append(out, line[:end])
		line = strings.TrimSpace(line[end:])
	}
	return out
}

// parseMSF turns "mm:ss:ff" (75 frames a second) into a frame count.
func parseMSF(s string) (int64, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, fmt.Errorf("bad INDEX time %q (want mm:ss:ff)", s)
	}
	var v [3]int64
	for i, p := range parts {
		n, err := strconv.ParseInt(p, 10, 32)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad INDEX time %q", s)
		}
		v[i] = n
	}
	if v[1] >= 60 || v[2] >= 75 {
		return 0, fmt.Errorf("bad INDEX time %q", s)
	}
	return (v[0]*60+v[1])*75 + v[2], nil
}

// cueBinPath resolves a cue sheet's FILE name next to the sheet. Cue sheets
// made on DOS and Windows often name the file in another case than the
// file system holds, so a case-insensitive match is accepted.
func cueBinPath(cue, name string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	if filepath.IsAbs(name) {
		return name
	}
	dir := filepath.Dir(cue)
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if ents, err := os.ReadDir(filepath.Dir(p)); err == nil {
		for _, e := range ents {
			if strings.EqualFold(e.Name(), filepath.Base(p)) {
				return filepath.Join(filepath.Dir(p), e.Name())
			}
		}
	}
	return p
}
