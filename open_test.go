package mediafs_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/mediafs/mediafs"
	"github.com/mediafs/mediafs/device"
)

const corpus = "../shared/corpus"

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (CI installs it): %v", tool, err)
		}
	}
}

func run(t *testing.T, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// mkfat makes a FAT image of size bytes with the given sector size and puts
// a few files on it with mtools.
func mkfat(t *testing.T, fatType, sectorSize int, size int64) (string, map[string][]byte) {
	t.Helper()
	need(t, "mkfs.fat", "mcopy", "mmd")
	dir := t.TempDir()
	img := filepath.Join(dir, "fat.img")
	f, _ := os.Create(img)
	f.Truncate(size)
	f.Close()
	run(t, nil, "mkfs.fat", "-F", strconv.Itoa(fatType), "-S", strconv.Itoa(sectorSize), "-s", "1", "-n", "MEDIAFS", img)
	files := map[string][]byte{
		"hello.txt":                []byte("hello, world\n"),
		"Long File Name.TXT":       bytes.Repeat([]byte("long\n"), 1000),
		"SUB/nested file data.bin": payload(3, 3*sectorSize+1),
		"SUB/DEEPER/empty":         nil,
	}
	env := []string{"MTOOLS_SKIP_CHECK=1"}
	// One call per directory: mtools does not see a directory it made
	// earlier in the same call on FAT32.
	run(t, env, "mmd", "-i", img, "::/SUB")
	run(t, env, "mmd", "-i", img, "::/SUB/DEEPER")
	for name, data := range files {
		p := filepath.Join(dir, "f")
		os.WriteFile(p, data, 0o644)
		run(t, env, "mcopy", "-i", img, p, "::/"+name)
	}
	return img, files
}

func checkFiles(t *testing.T, f fs.FS, files map[string][]byte) {
	t.Helper()
	for name, want := range files {
		got, err := fs.ReadFile(f, name)
		if err != nil {
			t.Errorf("read %s: %v", name, err)
		} else if !bytes.Equal(got, want) {
			t.Errorf("%s: content differs", name)
		}
	}
}

func TestOpenSuperfloppyAnySectorSize(t *testing.T) {
	for _, ss := range []int{512, 1024, 2048, 4096} {
		img, files := mkfat(t, 16, ss, 32<<20)
		f, err := mediafs.Open(img, mediafs.ReadOnly())
		if err != nil {
			t.Fatalf("%d: %v", ss, err)
		}
		in := f.Info()
		if in.FS != "fat16" || in.SectorSize != ss || in.Label != "MEDIAFS" {
			t.Errorf("sector size %d: info %+v", ss, in)
		}
		checkFiles(t, f, files)
		if err := fstest.TestFS(f, "hello.txt", "SUB/DEEPER/empty"); err != nil {
			t.Errorf("sector size %d: %v", ss, err)
		}
		f.Close()
	}
}

// mbrDisk puts a FAT image into an MBR-partitioned disk whose LBAs count in
// sectors of ss bytes, as a 2048-byte-sector MO disk's do.
func mbrDisk(t *testing.T, vol []byte, ss int, startLBA uint32, typ byte) string {
	t.Helper()
	disk := make([]byte, int(startLBA)*ss+len(vol)+ss)
	e := disk[446:]
	e[4] = typ
	binary.LittleEndian.PutUint32(e[8:], startLBA)
	binary.LittleEndian.PutUint32(e[12:], uint32(len(vol)/ss))
	disk[510], disk[511] = 0x55, 0xAA
	copy(disk[int(startLBA)*ss:], vol)
	p := filepath.Join(t.TempDir(), "disk.img")
	os.WriteFile(p, disk, 0o644)
	return p
}

func TestOpenPartitionedSectorSizeInferred(t *testing.T) {
	for _, tc := range []struct{ ss, fat int }{{512, 32}, {2048, 16}} {
		ss := tc.ss
		// (mtools cannot make directories on a FAT32 volume of fewer than
		// 65525 clusters, so the 2048-byte disk holds FAT16.)
		img, files := mkfat(t, tc.fat, ss, 64<<20)
		vol, _ := os.ReadFile(img)
		disk := mbrDisk(t, vol, ss, 16, 0x0C)
		f, err := mediafs.Open(disk, mediafs.ReadOnly())
		if err != nil {
			t.Fatalf("%d-byte sectors: %v", ss, err)
		}
		in := f.Info()
		if in.FS != fmt.Sprintf("fat%d", tc.fat) || in.SectorSize != ss || len(in.Partitions) != 1 || in.Partitions[0].Start != int64(16*ss) || in.Partition != 1 {
			t.Errorf("%d-byte sectors: info %+v", ss, in)
		}
		checkFiles(t, f, files)
		f.Close()

		if _, err := mediafs.Open(disk, mediafs.ReadOnly(), mediafs.WithPartition(2)); err == nil || !strings.Contains(err.Error(), "partition 2") {
			t.Errorf("--partition 2 of a one-partition disk: %v", err)
		}
	}
}

func TestOpenUnrecognized(t *testing.T) {
	_, err := mediafs.OpenDevice(device.NewMemory(bytes.Repeat([]byte{0xA5}, 1<<20), 512))
	if !errors.Is(err, mediafs.ErrUnrecognized) {
		t.Fatalf("garbage: %v", err)
	}
	ntfs := make([]byte, 1<<20)
	copy(ntfs[3:], "NTFS    ")
	_, err = mediafs.OpenDevice(device.NewMemory(ntfs, 512))
	var ue *mediafs.UnsupportedError
	if !errors.As(err, &ue) || ue.FS != "NTFS" {
		t.Fatalf("NTFS: %v", err)
	}
}

func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Skip("shared corpus absent:", err)
	}
	defer f.Close()
	if !strings.HasSuffix(path, ".gz") {
		b, _ := io.ReadAll(f)
		return b
	}
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(z)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// An isohybrid image carries an ISO 9660 volume and a partition table: the
// ISO wins unless a partition is asked for.
func TestIsohybrid(t *testing.T) {
	img := gunzip(t, filepath.Join(corpus, "coreos-installer/embed-areas-2023-07.x86_64.iso"))
	f, err := mediafs.OpenDevice(device.NewMemory(img, 512))
	if err != nil {
		t.Fatal(err)
	}
	if in := f.Info(); in.FS != "iso9660" || in.ElTorito == nil || !*in.ElTorito {
		t.Fatalf("isohybrid opened as %+v", in)
	}
	f.Close()
}

// The raw 2352-byte-sector rip in the corpus opens through its cue sheet
// and as a bare .bin.
func TestRawCDImage(t *testing.T) {
	for _, p := range []string{"libcdio/isofs-m1.cue", "libcdio/isofs-m1.bin"} {
		path := filepath.Join(corpus, p)
		if _, err := os.Stat(path); err != nil {
			t.Skip("shared corpus absent")
		}
		f, err := mediafs.Open(path, mediafs.ReadOnly())
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		ents, err := f.ReadDir(".")
		if err != nil || len(ents) == 0 {
			t.Fatalf("%s: root: %v, %d entries", p, err, len(ents))
		}
		f.Close()
	}
}
