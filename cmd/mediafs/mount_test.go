package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mediafs/mediafs"
	"github.com/mediafs/mediafs/device"
	"github.com/mediafs/mediafs/iso9660/mkiso"
)

// needFUSE skips when this machine cannot mount FUSE file systems.
func needFUSE(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no usable /dev/fuse (CI installs fuse3 and runs with it): %v", err)
	}
	f.Close()
	need(t, "fusermount3")
}

// mediafsBinary builds the real command into the test's temporary
// directory.
func mediafsBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mediafs")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// mountProc is a running `mediafs mount`.
type mountProc struct {
	cmd    *exec.Cmd
	dir    string
	stderr *bytes.Buffer
	exited chan struct{}
}

// startMount runs `mediafs mount ARGS... IMAGE DIR` and waits until DIR is
// mounted, which must take no more than a few seconds.
func startMount(t *testing.T, bin string, args ...string) *mountProc {
	t.Helper()
	dir := args[len(args)-1]
	var stderr bytes.Buffer
	cmd := exec.Command(bin, append([]string{"mount"}, args...)...)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &mountProc{cmd: cmd, dir: dir, stderr: &stderr, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			cmd.Process.Kill()
			<-p.exited
			exec.Command("fusermount3", "-u", "-z", dir).Run()
		}
	})
	start := time.Now()
	for !isMounted(dir) {
		select {
		case <-p.exited:
			t.Fatalf("mediafs mount exited %v before mounting:\n%s", cmd.ProcessState, stderr.String())
		default:
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("not mounted after 5 s:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return p
}

// wait waits (at most a few seconds) for the command to exit after it was
// told to stop, and wants exit status 0 and the mount gone.
func (p *mountProc) wait(t *testing.T) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("mediafs mount did not exit within 10 s:\n%s", p.stderr.String())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("mediafs mount exited %d:\n%s", code, p.stderr.String())
	}
	if isMounted(p.dir) {
		t.Errorf("%s is still mounted after mediafs exited", p.dir)
	}
}

func isMounted(dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// TestMountCommand runs the real binary on a FAT image: it mounts within a
// few seconds, takes writes with --rw, and stops with SIGTERM, with
// fusermount3 -u, and with SIGINT while a file is open, each time exiting 0
// with the volume clean and the changes in it.
func TestMountCommand(t *testing.T) {
	needFUSE(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "fat.img")
	if _, stderr, code := mediafsRun(t, "mkfs", "--type", "fat32", "--size", "64M", img); code != 0 {
		t.Fatalf("mkfs: %s", stderr)
	}
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	bin := mediafsBinary(t)
	big := bytes.Repeat([]byte("0123456789abcdef"), 70000)

	t.Run("SIGTERM", func(t *testing.T) {
		p := startMount(t, bin, "--rw", img, mnt)
		os.MkdirAll(filepath.Join(mnt, "docs/deep"), 0o755)
		must(t, os.WriteFile(filepath.Join(mnt, "docs/deep/big.bin"), big, 0o644))
		must(t, os.WriteFile(filepath.Join(mnt, "README.TXT"), []byte("read me\n"), 0o644))
		var st syscall.Stat_t
		must(t, syscall.Stat(filepath.Join(mnt, "README.TXT"), &st))
		if st.Mode&0o777 != 0o644 || st.Uid != uint32(os.Getuid()) {
			t.Errorf("README.TXT: mode %o, uid %d", st.Mode, st.Uid)
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		p.wait(t)
		fsckClean(t, img, 0, 0)
	})
	t.Run("fusermount3 -u", func(t *testing.T) {
		p := startMount(t, bin, "--rw", img, mnt)
		got, err := os.ReadFile(filepath.Join(mnt, "docs/deep/big.bin"))
		if err != nil || !bytes.Equal(got, big) {
			t.Errorf("big.bin after a remount: %d bytes, %v", len(got), err)
		}
		must(t, os.Rename(filepath.Join(mnt, "README.TXT"), filepath.Join(mnt, "docs/readme.txt")))
		must(t, os.Remove(filepath.Join(mnt, "docs/deep/big.bin")))
		if out, err := exec.Command("fusermount3", "-u", mnt).CombinedOutput(); err != nil {
			t.Fatalf("fusermount3 -u: %v\n%s", err, out)
		}
		p.wait(t)
		fsckClean(t, img, 0, 0)
	})
	t.Run("SIGINT with a file open", func(t *testing.T) {
		p := startMount(t, bin, "--rw", img, mnt)
		holder := exec.Command("sh", "-c", `exec 3<"$1"; echo open; exec sleep 60`, "sh", filepath.Join(mnt, "docs/readme.txt"))
		out, _ := holder.StdoutPipe()
		must(t, holder.Start())
		defer func() { holder.Process.Kill(); holder.Wait() }()
		buf := make([]byte, 5)
		out.Read(buf) // "open"
		p.cmd.Process.Signal(syscall.SIGINT)
		p.wait(t)
		if !strings.Contains(p.stderr.String(), "still open") {
			t.Errorf("no word of the open file:\n%s", p.stderr.String())
		}
		fsckClean(t, img, 0, 0)
	})
	f, err := mediafs.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, err := fs.ReadFile(f, "docs/readme.txt"); err != nil || string(got) != "read me\n" {
		t.Errorf("docs/readme.txt: %q, %v", got, err)
	}
	if _, err := fs.Stat(f, "docs/deep/big.bin"); err == nil {
		t.Errorf("docs/deep/big.bin is still there")
	}
}

// TestMountDamagedISOWithMap mounts an ISO image read-only with a ddrescue
// mapfile (--map) that leaves one file's sectors unread: that file fails
// with EIO, the others read right, from several readers at once.
func TestMountDamagedISOWithMap(t *testing.T) {
	needFUSE(t)
	src := makeSourceTree(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "rr.iso")
	if _, err := mkiso.WriteFile(img, os.DirFS(src), mkiso.Options{RockRidge: true, Joliet: true}); err != nil {
		t.Fatal(err)
	}
	f, err := mediafs.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	file, err := f.Open("data/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := file.(interface {
		MediumRanges(off, n int64) ([]device.Range, error)
	}).MediumRanges(4096, 2048)
	file.Close()
	f.Close()
	if err != nil || len(rs) != 1 {
		t.Fatalf("MediumRanges: %v, %v", rs, err)
	}
	fi, _ := os.Stat(img)
	bad := rs[0]
	mapfile := filepath.Join(dir, "rescue.map")
	must(t, os.WriteFile(mapfile, []byte(fmt.Sprintf("# Mapfile. Created by GNU ddrescue\n0x0 + 1\n0x0 %#x +\n%#x %#x -\n%#x %#x +\n",
		bad.Off, bad.Off, bad.Len, bad.End(), fi.Size()-bad.End())), 0o644))
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	bin := mediafsBinary(t)
	p := startMount(t, bin, "--map", mapfile, img, mnt)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
				if err != nil || !d.Type().IsRegular() {
					return err
				}
				rel, _ := filepath.Rel(src, path)
				got, err := os.ReadFile(filepath.Join(mnt, rel))
				want, _ := os.ReadFile(path)
				switch {
				case rel == "data/big.bin":
					if !errors.Is(err, syscall.EIO) {
						t.Errorf("%s: %v, want EIO", rel, err)
					}
				case err != nil || !bytes.Equal(got, want):
					t.Errorf("%s: %d bytes, %v", rel, len(got), err)
				}
				return nil
			})
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("readers hang")
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.wait(t)
}

// TestMountUsage checks the exit statuses of mount's refusals.
func TestMountUsage(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "fat.img")
	if _, stderr, code := mediafsRun(t, "mkfs", "--type", "fat16", "--size", "16M", img); code != 0 {
		t.Fatalf("mkfs: %s", stderr)
	}
	iso := filepath.Join(dir, "x.iso")
	if _, err := mkiso.WriteFile(iso, os.DirFS(makeSourceTree(t)), mkiso.Options{}); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"mount", img}, exitUsage, "usage"},
		{[]string{"mount", "--bogus", img, mnt}, exitUsage, "bogus"},
		{[]string{"mount", filepath.Join(dir, "missing.img"), mnt}, exitNoImage, "no such file"},
		{[]string{"mount", img, filepath.Join(dir, "no-such-dir")}, exitFailed, "mount point"},
		{[]string{"mount", img, img}, exitFailed, "not a directory"},
		{[]string{"mount", "--rw", iso, mnt}, exitFailed, "read-only"},
	} {
		_, stderr, code := mediafsRun(t, tc.args...)
		if code != tc.code || !strings.Contains(strings.ToLower(stderr), tc.msg) {
			t.Errorf("mediafs %v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, stderr, tc.code, tc.msg)
		}
	}
	if isMounted(mnt) {
		t.Errorf("%s was mounted", mnt)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
