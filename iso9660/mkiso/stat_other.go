//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package mkiso

import "io/fs"

// sysOwner returns zeros: this platform has no POSIX owner information.
func sysOwner(fs.FileInfo) (uid, gid uint32, rdev uint64) { return 0, 0, 0 }
