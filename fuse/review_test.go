package fuse

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A listing read at opendir and handed out after an unlink must not bring
// the removed file back (found in review).
func TestRemovedEntryStaysRemoved(t *testing.T) {
	needFUSE(t)
	img := newFAT(t, "fat16", 16<<20)
	mnt, srv := mountRW(t, img)
	d := filepath.Join(mnt, "d")
	os.Mkdir(d, 0o755)
	os.WriteFile(filepath.Join(d, "KEEP.TXT"), []byte("k"), 0o644)
	os.WriteFile(filepath.Join(d, "VICTIM.TXT"), []byte("victim"), 0o644)
	var sv syscall.Stat_t
	syscall.Stat(filepath.Join(d, "VICTIM.TXT"), &sv)
	dh, err := os.Open(d) // opendir: the listing is read now
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(d, "VICTIM.TXT")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	names, err := dh.Readdirnames(-1)
	t.Logf("listing after unlink: %v %v", names, err)
	dh.Close()
	var s1 syscall.Stat_t
	e1 := syscall.Stat(filepath.Join(d, "VICTIM.TXT"), &s1)
	t.Logf("stat VICTIM after unlink: %v ino %d (was %d)", e1, s1.Ino, sv.Ino)
	if err := os.WriteFile(filepath.Join(d, "NEWONE.TXT"), []byte("new file"), 0o644); err != nil {
		t.Fatal(err)
	}
	var s2 syscall.Stat_t
	syscall.Stat(filepath.Join(d, "NEWONE.TXT"), &s2)
	// NEWONE.TXT may take VICTIM.TXT's inode number: its entry is at
	// the same place, and VICTIM.TXT is gone with no handle open (any
	// file system reuses the numbers of removed files).
	t.Logf("NEWONE ino %d, VICTIM's was %d", s2.Ino, sv.Ino)
	if e1 == nil {
		t.Errorf("VICTIM.TXT is back after its unlink (ino %d; NEWONE.TXT has %d)", s1.Ino, s2.Ino)
	}
	for _, nm := range names {
		if nm == "VICTIM.TXT" {
			t.Errorf("a listing read before the unlink still hands out VICTIM.TXT: %v", names)
		}
	}
	b, err := os.ReadFile(filepath.Join(d, "VICTIM.TXT"))
	t.Logf("read VICTIM: %q %v", b, err)
	now := time.Now().Add(-time.Hour)
	err = os.Chtimes(filepath.Join(d, "NEWONE.TXT"), now, now)
	t.Logf("chtimes NEWONE: %v", err)
	err = os.Truncate(filepath.Join(d, "NEWONE.TXT"), 3)
	t.Logf("truncate NEWONE: %v", err)
	time.Sleep(1200 * time.Millisecond)
	b, err = os.ReadFile(filepath.Join(d, "NEWONE.TXT"))
	t.Logf("NEWONE now: %q %v", b, err)
	unmountAndClose(t, srv)
	fsckClean(t, img)
}
