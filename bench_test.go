package mediafs_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mediafs/mediafs"
)

// BenchmarkOpenHugeFAT32 opens a sparse 2 TiB FAT32 volume and lists its
// root (issue target: under 100 ms, so no full FAT scan at open). Run with
// `go test -bench OpenHuge -run XXX .`; it needs mkfs.fat and ~600 MB of
// free space for the FATs mkfs.fat writes.
func BenchmarkOpenHugeFAT32(b *testing.B) {
	if _, err := exec.LookPath("mkfs.fat"); err != nil {
		b.Skip("mkfs.fat is not installed")
	}
	img := filepath.Join(b.TempDir(), "huge.img")
	f, err := os.Create(img)
	if err != nil {
		b.Fatal(err)
	}
	f.Truncate(2 << 40)
	f.Close()
	if out, err := exec.Command("mkfs.fat", "-F", "32", "-s", "64", "-n", "HUGE", img).CombinedOutput(); err != nil {
		b.Skipf("mkfs.fat: %v\n%s", err, out)
	}
	b.ResetTimer()
	for range b.N {
		fsys, err := mediafs.Open(img, mediafs.ReadOnly())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := fsys.ReadDir("."); err != nil {
			b.Fatal(err)
		}
		fsys.Close()
	}
}
