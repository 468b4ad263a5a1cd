package fat

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mediafs/mediafs/device"
)

// mkfsType is the FAT type mkfs.fat picks for an image of size bytes with
// sectors of ss bytes.
func mkfsType(t *testing.T, size int64, ss int) string {
	img := filepath.Join(t.TempDir(), "ref.img")
	f, _ := os.Create(img)
	f.Truncate(size)
	f.Close()
	if out, err := exec.Command("mkfs.fat", "-S", itoa(ss), img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.fat: %v\n%s", err, out)
	}
	d, err := device.Open(img, device.Options{SectorSize: ss, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	return mustOpen(t, d, Options{}).Info().Type
}

func TestFormatLikeMkfs(t *testing.T) {
	needTools(t, "mkfs.fat", "fsck.fat", "mdir")
	sizes := []int64{160 << 10, 180 << 10, 320 << 10, 360 << 10, 720 << 10, 1200 << 10, 1440 << 10, 2880 << 10,
		4 << 20, 8 << 20, 12 << 20, 16 << 20, 24 << 20, 32 << 20, 64 << 20, 128 << 20, 256 << 20, 511 << 20, 512 << 20, 1 << 30, 3 << 30}
	for _, ss := range []int{512, 1024, 2048, 4096} {
		for _, size := range sizes {
			if size%int64(ss) != 0 {
				continue
			}
			want := mkfsType(t, size, ss)
			img, d := newImage(t, size, ss, FormatOptions{Label: "My Disk"})
			v := mustOpen(t, d, Options{})
			inf := v.Info()
			if inf.Type != want {
				t.Errorf("%d bytes, %d-byte sectors: %s, mkfs.fat makes %s", size, ss, inf.Type, want)
			}
			for _, edge := range []int64{minFAT16Clusters, minFAT32Clusters} {
				if d := inf.Clusters - edge; d > -thresholdGuard && d < thresholdGuard {
					t.Errorf("%d bytes, %d: %d clusters, near %d", size, ss, inf.Clusters, edge)
				}
			}
			if inf.ClusterSize > 32<<10 || len(inf.Warnings) > 0 || inf.Label != "MY DISK" || inf.BootLabel != "MY DISK" {
				t.Errorf("%d/%d: %+v", size, ss, inf)
			}
			fsckClean(t, img)
			if out, err := toolOutput("mdir", "-i", img, "::/"); err != nil || !strings.Contains(string(out), "MY DISK") {
				t.Errorf("%d/%d mdir: %v\n%s", size, ss, err, out)
			}
		}
	}
}

func TestFormatFloppies(t *testing.T) {
	want := map[int64][4]int{ // media, spc, root entries, FAT sectors
		160: {0xFE, 1, 64, 1}, 180: {0xFC, 1, 64, 2}, 320: {0xFF, 2, 112, 1}, 360: {0xFD, 2, 112, 2},
		720: {0xF9, 2, 112, 3}, 1200: {0xF9, 1, 224, 7}, 1440: {0xF0, 1, 224, 9}, 2880: {0xF0, 2, 240, 9},
	}
	for kib, w := range want {
		mem := device.NewMemory(make([]byte, kib<<10), 512)
		if err := Format(mem, FormatOptions{}); err != nil {
			t.Fatal(err)
		}
		bs, err := decodeBootSector(mem.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		got := [4]int{int(bs.Media), int(bs.SecPerClus), int(bs.RootEntCnt), int(bs.FATSz16)}
		if got != w {
			t.Errorf("%dK: media/spc/root/fat %v, want %v", kib, got, w)
		}
	}
}

func TestFormatFAT32Backup(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		// A sparse file, not memory: 600 MiB twice over, held until the
		// test ends, was most of this package's peak memory.
		img, mem := newImage(t, 600<<20, ss, FormatOptions{Type: "fat32"})
		b, err := readPrefix(img, 8*ss)
		if err != nil {
			t.Fatal(err)
		}
		if string(b[0:ss]) != string(b[6*ss:7*ss]) {
			t.Errorf("%d: backup boot sector differs", ss)
		}
		if string(b[ss:2*ss]) != string(b[7*ss:8*ss]) {
			t.Errorf("%d: backup FSInfo differs", ss)
		}
		v := mustOpen(t, mem, Options{Writable: true})
		writeAll(t, v, "x", make([]byte, 100000))
		if err := v.Close(); err != nil {
			t.Fatal(err)
		}
		if b, err = readPrefix(img, 8*ss); err != nil {
			t.Fatal(err)
		}
		fi, ok := decodeFSInfo(b[ss:])
		v2 := mustOpen(t, mem, Options{})
		free, _, _ := v2.scanFATs()
		if !ok || int64(fi.FreeCount) != free || string(b[ss:2*ss]) != string(b[7*ss:8*ss]) {
			t.Errorf("%d: FSInfo %+v, FAT has %d free", ss, fi, free)
		}
	}
}

func TestFormat2TiBSparse(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	img := filepath.Join(t.TempDir(), "big.img")
	f, _ := os.Create(img)
	f.Truncate(2 << 40)
	f.Close()
	d, err := device.Open(img, device.Options{SectorSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := Format(d, FormatOptions{}); err != nil {
		t.Fatal(err)
	}
	inf := mustOpen(t, d, Options{}).Info()
	if inf.Type != "fat32" || inf.ClusterSize != 32<<10 {
		t.Errorf("%+v", inf)
	}
}

// readPrefix reads the first n bytes of the file at path.
func readPrefix(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	_, err = io.ReadFull(f, b)
	return b, err
}
