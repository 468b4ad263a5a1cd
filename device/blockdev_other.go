//go:build !linux

package device

import (
	"errors"
	"os"
)

func blockDeviceGeometry(f *os.File) (int, int64, error) {
	return 0, 0, errors.New("block devices are supported on Linux only")
}

// LastSession returns 0 where CD-ROM ioctls are not available.
func LastSession(d *File) int64 { return 0 }
