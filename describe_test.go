package mediafs

import (
	"io/fs"
	"testing"
)

func TestUnixMode(t *testing.T) {
	for m, want := range map[fs.FileMode]string{
		0o644:                  "-rw-r--r--",
		fs.ModeDir | 0o755:     "drwxr-xr-x",
		fs.ModeSymlink | 0o777: "lrwxrwxrwx",
		fs.ModeDevice | fs.ModeCharDevice | 0o660: "crw-rw----",
		fs.ModeDevice | 0o660:                     "brw-rw----",
		fs.ModeNamedPipe | 0o644:                  "prw-r--r--",
		fs.ModeSetuid | 0o755:                     "-rwsr-xr-x",
		fs.ModeSetgid | 0o644:                     "-rw-r-Sr--",
		fs.ModeDir | fs.ModeSticky | 0o1777:       "drwxrwxrwt",
	} {
		if got := UnixMode(m); got != want {
			t.Errorf("UnixMode(%v) = %s, want %s", m, got, want)
		}
	}
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{"/": ".", ".": ".", "": ".", "/a/b/": "a/b", "a//b": "a/b", "a/./b": "a/b", "//x": "x"} {
		if got, err := CleanPath(in); err != nil || got != want {
			t.Errorf("CleanPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"../x", "a/../../b", "a/..", "a\x00b"} {
		if got, err := CleanPath(bad); err == nil {
			t.Errorf("CleanPath(%q) = %q, want an error", bad, got)
		}
	}
}
