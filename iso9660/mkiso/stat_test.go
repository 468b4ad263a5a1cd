package mkiso

import (
	"os"
	"syscall"
)

type syscallStat struct{}

// used returns the bytes a file occupies on disk, where known.
func (syscallStat) used(name string) (int64, bool) {
	fi, err := os.Stat(name)
	if err != nil {
		return 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Blocks * 512, true
}
