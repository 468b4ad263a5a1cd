package device

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func TestFileEndsMidSector(t *testing.T) {
	// An image whose length is not a whole number of sectors reads as if
	// its missing tail were zeros, and nothing past the last sector reads.
	path := filepath.Join(t.TempDir(), "img")
	data := pattern(2048*3 + 1000)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path, Options{ReadOnly: true, SectorSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Size() != 2048*4 {
		t.Fatalf("Size = %d, want %d", f.Size(), 2048*4)
	}
	buf := make([]byte, 4096)
	if _, err := f.ReadAt(buf, 4096); err != nil {
		t.Fatalf("reading the last, partial sector: %v", err)
	}
	want := append(append([]byte{}, data[4096:]...), make([]byte, 4096-len(data[4096:]))...)
	if !bytes.Equal(buf, want) {
		t.Fatal("tail sector: wrong bytes or not zero-filled")
	}
	_, err = f.ReadAt(buf[:2048], 4*2048)
	var se *SectorError
	if !errors.As(err, &se) || se.Sector != 4 || !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("read past the end: %v, want sector 4 out of range", err)
	}
	if _, err := f.WriteAt(buf[:2048], 0); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("write to a read-only device: %v", err)
	}
}

func TestViewAndWindow(t *testing.T) {
	mem := NewMemory(pattern(512*9), 512) // 4.5 KiB: 2048-byte view has 3 sectors
	v, err := NewView(mem, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if v.Size() != 3*2048 {
		t.Fatalf("view size %d", v.Size())
	}
	buf := make([]byte, 2048)
	if _, err := v.ReadAt(buf, 4096); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf[:512], mem.Bytes()[4096:]) || !bytes.Equal(buf[512:], make([]byte, 1536)) {
		t.Fatal("view tail not zero-filled past the medium")
	}
	if _, err := NewView(NewMemory(make([]byte, 4096), 2048), 512); err == nil {
		t.Fatal("a view with smaller sectors than the medium was accepted")
	}

	w, err := NewWindow(mem, 1024, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.ReadAt(buf[:512], 512); err != nil || !bytes.Equal(buf[:512], mem.Bytes()[1536:2048]) {
		t.Fatalf("window read: %v", err)
	}
	_, err = w.ReadAt(buf[:512], 2048)
	var se *SectorError
	if !errors.As(err, &se) || se.Sector != 6 {
		t.Fatalf("window overrun: %v, want absolute sector 6", err)
	}
	if _, err := NewWindow(mem, 100, 512); err == nil {
		t.Fatal("unaligned window accepted")
	}
}

func TestStrict(t *testing.T) {
	s := NewStrict(NewMemory(make([]byte, 8192), 2048))
	for _, tc := range []struct {
		off int64
		n   int
		ok  bool
	}{{0, 2048, true}, {2048, 4096, true}, {512, 2048, false}, {0, 1000, false}, {6144, 4096, false}, {8192, 2048, false}} {
		_, err := s.ReadAt(make([]byte, tc.n), tc.off)
		if (err == nil) != tc.ok {
			t.Errorf("ReadAt(%d bytes at %d): err=%v, want ok=%v", tc.n, tc.off, err, tc.ok)
		}
	}
	if s.Reads.Load() != 2 {
		t.Errorf("Reads = %d, want 2", s.Reads.Load())
	}
}

// cookedToRaw builds a raw 2352-byte-sector image from 2048-byte sectors.
func cookedToRaw(cooked []byte, mode int, form2At int) []byte {
	var out []byte
	for i := 0; i*2048 < len(cooked); i++ {
		s := make([]byte, RawSectorSize)
		copy(s, cdSync)
		s[15] = byte(mode)
		off := 16
		if mode == 2 {
			off = 24
			if i == form2At {
				s[18] = 0x20
			}
		}
		copy(s[off:], cooked[i*2048:(i+1)*2048])
		out = append(out, s...)
	}
	return out
}

func TestRawCD(t *testing.T) {
	cooked := pattern(2048 * 40)
	for _, mode := range []int{1, 2} {
		dir := t.TempDir()
		bin := filepath.Join(dir, "DISC.BIN")
		if err := os.WriteFile(bin, cookedToRaw(cooked, mode, 33), 0o644); err != nil {
			t.Fatal(err)
		}
		if !IsRawCD(cookedToRaw(cooked[:2048], mode, -1)) {
			t.Fatal("IsRawCD missed the sync pattern")
		}
		cue := filepath.Join(dir, "disc.cue")
		modeName := map[int]string{1: "MODE1/2352", 2: "MODE2/2352"}[mode]
		// The cue names the file in lower case: resolved case-insensitively.
		os.WriteFile(cue, []byte("FILE \"disc.bin\" BINARY\r\n  TRACK 01 "+modeName+"\r\n    INDEX 01 00:00:00\r\n"), 0o644)
		for name, open := range map[string]func() (Device, error){
			"bin": func() (Device, error) { return OpenRawCD(bin) },
			"cue": func() (Device, error) { return OpenCue(cue) },
		} {
			d, err := open()
			if err != nil {
				t.Fatalf("mode %d %s: %v", mode, name, err)
			}
			if d.SectorSize() != 2048 || d.Size() != int64(len(cooked)) {
				t.Fatalf("mode %d %s: geometry %d/%d", mode, name, d.SectorSize(), d.Size())
			}
			buf := make([]byte, 2048*30)
			if _, err := d.ReadAt(buf, 2048*2); err != nil {
				t.Fatalf("mode %d %s: %v", mode, name, err)
			}
			if !bytes.Equal(buf, cooked[2048*2:2048*32]) {
				t.Fatalf("mode %d %s: user data differs", mode, name)
			}
			_, err = d.ReadAt(buf[:2048*4], 2048*32)
			var se *SectorError
			if mode == 2 {
				if !errors.As(err, &se) || se.Sector != 33 {
					t.Fatalf("form 2 sector: %v, want an error at sector 33", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			d.Close()
		}
	}
}

// A track that starts past the end of its file is refused, naming the
// line, and the file is not left open.
func TestCueTrackPastEnd(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "d.iso"), pattern(2048*10), 0o644)
	os.WriteFile(filepath.Join(dir, "d.bin"), pattern(2352*10), 0o644)
	fds := func() int {
		ents, _ := os.ReadDir("/proc/self/fd")
		return len(ents)
	}
	before := fds()
	for file, mode := range map[string]string{"d.iso": "MODE1/2048", "d.bin": "MODE1/2352"} {
		cue := filepath.Join(dir, "d.cue")
		os.WriteFile(cue, []byte("FILE "+file+" BINARY\nTRACK 01 "+mode+"\nINDEX 01 00:01:00\n"), 0o644)
		if d, err := OpenCue(cue); err == nil {
			d.Close()
			t.Errorf("%s: a track 75 sectors into a 10-sector file opened", mode)
		} else if mode == "MODE1/2048" && !strings.Contains(err.Error(), "d.cue:3: the track starts at byte 153600, at or beyond the end") {
			t.Errorf("%s: %v", mode, err)
		}
	}
	if after := fds(); after != before {
		t.Errorf("%d file descriptors open before, %d after", before, after)
	}
}

func TestCorpusRawCD(t *testing.T) {
	cue := "../../shared/corpus/libcdio/isofs-m1.cue"
	if _, err := os.Stat(cue); err != nil {
		t.Skip("shared corpus absent:", err)
	}
	d, err := OpenCue(cue)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	buf := make([]byte, 2048)
	if _, err := d.ReadAt(buf, 16*2048); err != nil {
		t.Fatal(err)
	}
	if string(buf[1:6]) != "CD001" || buf[0] != 1 {
		t.Fatalf("sector 16 of the raw image is not a primary volume descriptor: % x", buf[:8])
	}
}
