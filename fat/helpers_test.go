package fat

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mediafs/mediafs/device"
)

const corpusDir = "../../shared/corpus" // shared/ lies beside the checkout

// corpusPath returns the path of a corpus file, skipping the test when the
// corpus is not on this machine.
func corpusPath(t testing.TB, rel string) string {
	t.Helper()
	p := filepath.Join(corpusDir, rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("corpus file %s not available", p)
	}
	return p
}

// needTools skips the test when a tool is missing.
func needTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

// sparseImage is an image decoded from an xxd dump: lines of 16 bytes and
// runs ("*") that repeat a line up to the next offset. It is never
// materialised, so the dosfstools dumps of 1 GiB volumes cost nothing.
type sparseImage struct {
	lines   []xxdLine // sorted by offset
	repeats []xxdRepeat
	size    int64
}

type xxdLine struct {
	off  int64
	data []byte
}

type xxdRepeat struct {
	from, to int64 // [from, to): whole 16-byte lines
	pattern  []byte
}

// parseXXD reads `xxd` output: "OFFSET: hhhh hhhh …  ascii" and "*".
func parseXXD(r io.Reader) (*sparseImage, error) {
	img := &sparseImage{}
	sc := bufio.NewScanner(r)
	var prev *xxdLine
	pendingRepeat := false
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "*" {
			pendingRepeat = true
			continue
		}
		colon := strings.IndexByte(line, ':')
		if colon < 0 {
			continue
		}
		off, err := strconv.ParseInt(line[:colon], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("xxd: bad offset in %q", line)
		}
		hexPart := line[colon+1:]
		if i := strings.Index(hexPart, "  "); i >= 0 {
			hexPart = hexPart[:i]
		}
		data, err := hex.DecodeString(strings.ReplaceAll(hexPart, " ", ""))
		if err != nil {
			return nil, fmt.Errorf("xxd: bad hex in %q: %v", line, err)
		}
		if pendingRepeat && prev != nil {
			img.repeats = append(img.repeats, xxdRepeat{from: prev.off + 16, to: off, pattern: prev.data})
			pendingRepeat = false
		}
		img.lines = append(img.lines, xxdLine{off: off, data: data})
		prev = &img.lines[len(img.lines)-1]
		img.size = off + int64(len(data))
	}
	sort.Slice(img.lines, func(i, j int) bool { return img.lines[i].off < img.lines[j].off })
	return img, sc.Err()
}

func (s *sparseImage) ReadAt(p []byte, off int64) (int, error) {
	if off >= s.size {
		return 0, io.EOF
	}
	clear(p)
	end := off + int64(len(p))
	for _, r := range s.repeats {
		if r.to <= off || r.from >= end {
			continue
		}
		for l := max(r.from, off-off%16); l < min(r.to, end); l += 16 {
			copyAt(p, off, l, r.pattern)
		}
	}
	i := sort.Search(len(s.lines), func(i int) bool { return s.lines[i].off+16 > off })
	for ; i < len(s.lines) && s.lines[i].off < end; i++ {
		copyAt(p, off, s.lines[i].off, s.lines[i].data)
	}
	if end > s.size {
		return int(s.size - off), io.EOF
	}
	return len(p), nil
}

// copyAt copies data, which belongs at image offset at, into p, which
// holds the image from offset off.
func copyAt(p []byte, off, at int64, data []byte) {
	if at < off {
		if off-at >= int64(len(data)) {
			return
		}
		data = data[off-at:]
		at = off
	}
	if at-off < int64(len(p)) {
		copy(p[at-off:], data)
	}
}

// sparseDevice is a read-only device over an io.ReaderAt.
type sparseDevice struct {
	r    io.ReaderAt
	size int64 // whole sectors
	ss   int
}

func newSparseDevice(r io.ReaderAt, size int64, ss int) *sparseDevice {
	return &sparseDevice{r: r, size: (size + int64(ss) - 1) / int64(ss) * int64(ss), ss: ss}
}

func (d *sparseDevice) SectorSize() int { return d.ss }
func (d *sparseDevice) Size() int64     { return d.size }
func (d *sparseDevice) Sync() error     { return nil }
func (d *sparseDevice) Close() error    { return nil }
func (d *sparseDevice) WriteAt(p []byte, off int64) (int, error) {
	return 0, &device.SectorError{Op: "write", Sector: off / int64(d.ss), Err: device.ErrReadOnly}
}
func (d *sparseDevice) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > d.size {
		return 0, &device.SectorError{Op: "read", Sector: off / int64(d.ss), Err: device.ErrOutOfRange}
	}
	n, err := d.r.ReadAt(p, off)
	if err == io.EOF {
		clear(p[n:]) // the partial last sector reads as zeros
		return len(p), nil
	}
	return n, err
}

// corpusDevice opens a corpus image (raw, .gz or xxd dump) as a strict
// device with sector size ss.
func corpusDevice(t testing.TB, rel string, ss int) *device.Strict {
	t.Helper()
	p := corpusPath(t, rel)
	switch {
	case strings.HasSuffix(p, ".gz"):
		return device.NewStrict(gunzipDevice(t, p, ss))
	case strings.HasSuffix(p, ".xxd") || strings.HasSuffix(p, ".fsck"):
		raw, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := parseXXD(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		return device.NewStrict(newSparseDevice(img, img.size, ss))
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return device.NewStrict(device.NewMemory(raw, ss))
}

// gunzipped maps a corpus .gz path to its sparse decompressed copy in
// scratchDir, made once per test binary: the SD-card image is 512 MiB, and
// holding it in memory (several times over under -race) was what got CI's
// test process killed.
var (
	gunzipMu   sync.Mutex
	gunzipped  = map[string]string{}
	scratchDir string // made by TestMain, removed after the tests
)

// gunzipDevice returns a device over the decompressed image: in memory for
// small images (a test may change its copy), a read-only file otherwise.
func gunzipDevice(t testing.TB, p string, ss int) device.Device {
	t.Helper()
	gunzipMu.Lock()
	name, ok := gunzipped[p]
	if !ok {
		name = filepath.Join(scratchDir, fmt.Sprintf("%d.img", len(gunzipped)))
		if err := gunzipSparse(p, name); err != nil {
			gunzipMu.Unlock()
			t.Fatal(err)
		}
		gunzipped[p] = name
	}
	gunzipMu.Unlock()
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() <= 64<<20 {
		raw, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return device.NewMemory(raw, ss)
	}
	d, err := device.Open(name, device.Options{ReadOnly: true, SectorSize: ss})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// gunzipSparse decompresses gz into out, leaving all-zero runs as holes.
func gunzipSparse(gz, out string) error {
	in, err := os.Open(gz)
	if err != nil {
		return err
	}
	defer in.Close()
	zr, err := gzip.NewReader(bufio.NewReader(in))
	if err != nil {
		return fmt.Errorf("%s: %w", gz, err)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	var off int64
	for eof := false; !eof; {
		// Fill buf; only io.EOF ends the stream (a truncated .gz gives
		// io.ErrUnexpectedEOF, which is an error).
		n := 0
		for n < len(buf) {
			k, err := zr.Read(buf[n:])
			n += k
			if err == io.EOF {
				eof = true
				break
			}
			if err != nil {
				return fmt.Errorf("%s: %w", gz, err)
			}
		}
		if n > 0 && !allZero(buf[:n]) {
			if _, err := f.WriteAt(buf[:n], off); err != nil {
				return err
			}
		}
		off += int64(n)
	}
	if err := f.Truncate(off); err != nil {
		return err
	}
	return f.Close()
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mediafs-fat-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	scratchDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// mustOpen mounts d, failing the test on error.
func mustOpen(t testing.TB, d device.Device, opts Options) *FS {
	t.Helper()
	v, err := Open(d, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if st := v.CacheStats(); st.Pins != 0 || st.Pinned != 0 || st.Dirty != 0 {
			t.Errorf("cache not clean after the test: %+v", st)
		}
	})
	return v
}
