package main

import (
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mediafs/mediafs"
	"github.com/mediafs/mediafs/fuse"
)

func newMountCmd(g *globals) *cobra.Command {
	var rw, allowOther, debug bool
	cmd := &cobra.Command{
		Use:   "mount [--rw] [--allow-other] [--debug] IMAGE MOUNTPOINT",
		Short: "Mount an image with FUSE (read-only; FAT read-write with --rw)",
		Long: `mount serves IMAGE on MOUNTPOINT through FUSE, in the foreground, until
Ctrl-C, SIGTERM, or "fusermount3 -u MOUNTPOINT"; then it flushes, marks a
FAT volume clean, unmounts and exits 0. Files belong to the mounting user;
media without permissions of their own (FAT, ISO 9660 without Rock Ridge)
show directories 0555 and files 0444, or 0755 and 0644 with --rw.

The mount is read-only unless --rw is given, which FAT images take (ISO 9660
is read-only). --allow-other lets other users in (for users other than
root, /etc/fuse.conf must say user_allow_other); --debug logs every FUSE
request to stderr. The global options apply as to every verb: --map
MAPFILE makes the areas a ddrescue map does not mark finished fail with EIO,
and --partition, --namespace, --session, --codepage, --tz, --io-timeout and
--retries choose and read the volume. Needs /dev/fuse and fusermount3
(Debian: apt install fuse3).`,
		Args: argsBetween(2, 2, "mount [--rw] [--allow-other] [--debug] IMAGE MOUNTPOINT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			image, dir := args[0], args[1]
			if fi, err := os.Stat(dir); err != nil {
				return failed(fmt.Errorf("mount point: %w", err))
			} else if !fi.IsDir() {
				return failed(fmt.Errorf("mount point %s is not a directory", dir))
			}
			var fsys mediafs.FS
			if rw {
				w, err := g.openWritable(cmd, image) // ISO 9660: a clear read-only error
				if err != nil {
					return err
				}
				fsys = w
			} else {
				f, err := g.open(cmd, image)
				if err != nil {
					return err
				}
				fsys = f
			}
			return serveMount(g, fsys, image, dir, fuse.Options{
				Writable:   rw,
				AllowOther: allowOther,
				Debug:      debug,
				Logger:     log.New(g.stderr, "", log.Lmicroseconds),
				FsName:     image,
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&rw, "rw", false, "mount read-write (FAT)")
	fl.BoolVar(&allowOther, "allow-other", false, "let other users access the mount (FUSE allow_other)")
	fl.BoolVar(&debug, "debug", false, "log every FUSE request and reply to stderr")
	return cmd
}

// serveMount mounts fsys, serves it until a signal or an unmount from
// outside, then unmounts, syncs and closes it.
func serveMount(g *globals, fsys mediafs.FS, image, dir string, o fuse.Options) error {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	srv, err := fuse.Mount(dir, fsys, o)
	if err != nil {
		fsys.Close()
		return failed(err)
	}
	mode := "read-only"
	if o.Writable {
		mode = "read-write"
	}
	if !g.quiet {
		fmt.Fprintf(g.stderr, "mediafs: %s mounted on %s (%s); stop with Ctrl-C or fusermount3 -u %s\n",
			image, srv.Mountpoint(), mode, srv.Mountpoint())
	}
	var res error
	select {
	case <-srv.Done():
	case <-sigs:
		if err := srv.Unmount(); err != nil {
			g.errorf("%v", err)
			res = errSomeFailed
		}
		if srv.LazilyUnmounted() && !g.quiet {
			g.warn("files were still open on %s: it was detached lazily; they fail from now on", srv.Mountpoint())
		}
	}
	if err := srv.Close(); err != nil {
		g.errorf("%s: %v", image, err)
		res = errSomeFailed
	}
	g.laterWarnings(fsys, image)
	if err := fsys.Close(); err != nil {
		g.errorf("%s: closing: %v", image, err)
		res = errSomeFailed
	}
	return res
}
