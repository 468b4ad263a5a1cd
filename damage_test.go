package mediafs_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mediafs/mediafs"
	"github.com/mediafs/mediafs/device"
)

// Every image of the corpus (real and hostile ones), under maps that make
// scattered sectors, the volume descriptors, the FAT area or half the
// medium unreadable: opening, the damage report and a salvaging walk of
// the tree end within seconds and never panic.
func TestDamageCorpusBounded(t *testing.T) {
	if _, err := os.Stat(corpus); err != nil {
		t.Skipf("corpus %s not available", corpus)
	}
	var images []string
	filepath.WalkDir(corpus, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			if d != nil && d.IsDir() && d.Name() == "expected" {
				return fs.SkipDir
			}
			return nil
		}
		switch ext := filepath.Ext(p); {
		case strings.HasSuffix(p, ".gz"), ext == ".xxd", ext == ".fsck", ext == ".iso", ext == ".img",
			ext == ".raw", ext == ".fat", ext == ".msdos", ext == ".vfat", ext == ".iso9660j":
			images = append(images, p)
		}
		return nil
	})
	if len(images) < 20 {
		t.Fatalf("only %d images found in %s", len(images), corpus)
	}
	dir := t.TempDir()
	for _, src := range images {
		name, _ := filepath.Rel(corpus, src)
		t.Run(name, func(t *testing.T) {
			img := filepath.Join(dir, "image")
			size := materialise(t, src, img)
			if size < 4096 {
				t.Skip("too small to be a volume")
			}
			rng := rand.New(rand.NewPCG(uint64(size), 7))
			maps := map[string][]device.MapBlock{
				"descriptors": {{Range: device.Range{Off: 16 * 2048, Len: 4 * 2048}, Status: '-'}},
				"fat area":    {{Range: device.Range{Off: 512, Len: 16 * 512}, Status: '/'}},
				"half":        {{Range: device.Range{Off: size / 2 / 512 * 512, Len: size - size/2/512*512}, Status: '?'}},
			}
			var scatter []device.MapBlock
			for off := int64(0); off < size; {
				off += 2048 * (1 + rng.Int64N(max(size/2048/64, 1)))
				if off < size {
					scatter = append(scatter, device.MapBlock{Range: device.Range{Off: off, Len: min(2048, size-off)}, Status: '*'})
				}
				off += 2048
			}
			maps["scattered"] = scatter
			for what, bad := range maps {
				m := fullMap(bad, size)
				done := make(chan string, 1)
				go func() {
					defer func() {
						if r := recover(); r != nil {
							done <- fmt.Sprintf("panic: %v", r)
						}
					}()
					done <- exercise(img, m)
				}()
				select {
				case msg := <-done:
					t.Logf("%s: %s", what, msg)
					if strings.HasPrefix(msg, "panic") {
						t.Errorf("%s: %s", what, msg)
					}
				case <-time.After(60 * time.Second):
					t.Fatalf("%s: damage or the walk did not end within a minute", what)
				}
			}
		})
	}
}

// exercise opens img with map m, makes the damage report and walks the
// tree as ls -R does; it returns what happened, for the log.
func exercise(img string, m *device.Mapfile) string {
	f, err := mediafs.Open(img, mediafs.WithMapfile(m))
	if err != nil {
		return "open: " + err.Error()
	}
	defer f.Close()
	rep, err := mediafs.Damage(f, m)
	if err != nil {
		return "damage: " + err.Error()
	}
	n := 0
	fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
		if n++; n > 200_000 {
			return fs.SkipAll
		}
		if d != nil && err == nil {
			d.Info()
		}
		return nil
	})
	return fmt.Sprintf("%d objects, %d walked", len(rep.Objects), n)
}

// fullMap makes a mapfile whose given blocks are bad and everything else
// finished.
func fullMap(bad []device.MapBlock, size int64) *device.Mapfile {
	m := &device.Mapfile{}
	var pos int64
	for _, b := range bad {
		if b.Off < pos || b.Len <= 0 {
			continue
		}
		if b.Off > pos {
			m.Blocks = append(m.Blocks, device.MapBlock{Range: device.Range{Off: pos, Len: b.Off - pos}, Status: '+'})
		}
		m.Blocks = append(m.Blocks, b)
		pos = b.End()
	}
	if pos < size {
		m.Blocks = append(m.Blocks, device.MapBlock{Range: device.Range{Off: pos, Len: size - pos}, Status: '+'})
	}
	return m
}

// materialise writes a corpus image to dst: gunzipped, or decoded from an
// xxd dump (a "*" line repeats the line before up to the next offset),
// sparsely. It returns the size.
func materialise(t *testing.T, src, dst string) int64 {
	t.Helper()
	switch filepath.Ext(src) {
	case ".xxd", ".fsck":
		return xxdToFile(t, src, dst)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var r io.Reader = in
	if filepath.Ext(src) == ".gz" {
		// The gzip trailer's ISIZE (RFC 1952) says how large it is; the
		// 512 MiB partitioned disk would cost seconds to inflate under
		// -race (TestDamagePartitioned covers partitions).
		st, _ := in.Stat()
		var isize [4]byte
		if _, err := in.ReadAt(isize[:], st.Size()-4); err == nil && binary.LittleEndian.Uint32(isize[:]) > 128<<20 {
			t.Skip("larger than 128 MiB inflated")
		}
		zr, err := gzip.NewReader(in)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	// Sparsely: images are mostly zeros.
	buf := make([]byte, 64<<10)
	var size int64
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 && !bytes.Equal(buf[:n], make([]byte, n)) {
			if _, werr := out.WriteAt(buf[:n], size); werr != nil {
				t.Fatal(werr)
			}
		}
		size += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := out.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return size
}

func xxdToFile(t *testing.T, src, dst string) int64 {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var last []byte
	var lastOff int64 = -16
	repeat := false
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "*" {
			repeat = true
			continue
		}
		off, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		o, err := strconv.ParseInt(strings.TrimSpace(off), 16, 64)
		if err != nil {
			continue
		}
		if repeat && last != nil && !bytes.Equal(last, make([]byte, len(last))) {
			for p := lastOff + 16; p < o; p += 16 {
				out.WriteAt(last, p)
			}
		}
		repeat = false
		fields := strings.Fields(rest)
		var b []byte
		for _, f := range fields {
			if len(f) != 4 && len(f) != 2 {
				break
			}
			x, err := hex.DecodeString(f)
			if err != nil {
				break
			}
			b = append(b, x...)
			if len(b) >= 16 {
				break
			}
		}
		out.WriteAt(b, o)
		last, lastOff = b, o
	}
	size := lastOff + 16
	out.Truncate(size)
	return size
}
