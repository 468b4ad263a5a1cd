package device

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// A GNU ddrescue mapfile records what a rescue could read. After comment
// lines ("#"), the first line is the current position, status and pass;
// every other line is a block "pos size status" with pos and size in bytes
// (ddrescue writes them as 0x-prefixed hexadecimal; decimal and octal are
// accepted as its own parser accepts them). The statuses are:
//
//	?  non-tried    *  failed, non-trimmed    /  failed, non-scraped
//	-  bad sector   +  finished (good)
//
// Only "+" is good: everything else was not read, and the rescued image has
// zeros there that must not be trusted.

// Mapfile is a parsed ddrescue mapfile.
type Mapfile struct {
	Blocks []MapBlock
}

// MapBlock is one line of a mapfile.
type MapBlock struct {
	Range
	Status byte
}

// Bad returns the byte ranges that were not read (status other than "+").
func (m *Mapfile) Bad() []Range {
	var out []Range
	for _, b := range m.Blocks {
		if b.Status != '+' {
			out = addRange(out, b.Range)
		}
	}
	return out
}

// ReadMapfile parses a ddrescue mapfile.
func ReadMapfile(path string) (*Mapfile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := ParseMapfile(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ParseMapfile parses a ddrescue mapfile from r. Errors name the line.
func ParseMapfile(r io.Reader) (*Mapfile, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<16)
	m := &Mapfile{}
	line := 0
	sawPos := false
	var next int64
	for sc.Scan() {
		line++
		text := sc.Text()
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		if !sawPos {
			// current_pos current_status [current_pass]
			if len(fields) < 2 || len(fields) > 3 {
				return nil, fmt.Errorf("line %d: want the current position line \"pos status [pass]\", got %q", line, sc.Text())
			}
			if _, err := parseMapNumber(fields[0]); err != nil {
				return nil, fmt.Errorf("line %d: current position: %v", line, err)
			}
			if len(fields[1]) != 1 || !strings.ContainsAny(fields[1], "?*/-FG+") {
				return nil, fmt.Errorf("line %d: unknown current status %q", line, fields[1])
			}
			sawPos = true
			continue
		}
		if len(fields) != 3 {
			return nil, fmt.Errorf("line %d: want \"pos size status\", got %q", line, sc.Text())
		}
		pos, err := parseMapNumber(fields[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: position: %v", line, err)
		}
		size, err := parseMapNumber(fields[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: size: %v", line, err)
		}
		if size <= 0 {
			return nil, fmt.Errorf("line %d: block size must be positive", line)
		}
		st := fields[2]
		if len(st) != 1 || !strings.Contains("?*/-+", st) {
			return nil, fmt.Errorf("line %d: unknown status %q (want one of ? * / - +)", line, st)
		}
		if pos < next {
			return nil, fmt.Errorf("line %d: block at %#x overlaps or precedes the one before (which ends at %#x)", line, pos, next)
		}
		if pos > (1<<62)-size {
			return nil, fmt.Errorf("line %d: block at %#x of %#x bytes is out of range", line, pos, size)
		}
		next = pos + size
		m.Blocks = append(m.Blocks, MapBlock{Range: Range{pos, size}, Status: st[0]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	if !sawPos {
		return nil, fmt.Errorf("no current position line: not a ddrescue mapfile")
	}
	return m, nil
}

func parseMapNumber(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad number %q", s)
	}
	return v, nil
}

// NewMapped wraps d so that every area a ddrescue mapfile does not mark as
// finished ("+") is unreadable. Bytes the map does not cover at all were
// never tried, and are unreadable too.
func NewMapped(d Device, m *Mapfile) *Faulty {
	f := NewFaulty(d)
	var covered int64
	for _, b := range m.Blocks {
		if b.Off > covered {
			f.FailReads(covered, b.Off-covered)
		}
		covered = max(covered, b.End())
	}
	if covered < d.Size() {
		f.FailReads(covered, d.Size()-covered)
	}
	for _, r := range m.Bad() {
		f.FailReads(r.Off, r.Len)
	}
	return f
}
