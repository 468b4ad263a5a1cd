//go:build linux || darwin || freebsd || netbsd || openbsd

package mkiso

import (
	"io/fs"
	"syscall"
)

// sysOwner returns the owner, group and device number recorded by the
// operating system, or zeros when fi does not come from one.
func sysOwner(fi fs.FileInfo) (uid, gid uint32, rdev uint64) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st == nil {
		return 0, 0, 0
	}
	return st.Uid, st.Gid, uint64(st.Rdev)
}
