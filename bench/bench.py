#!/usr/bin/env python3
"""Extraction benchmark: mediafs against the peer tools, on the same images.

Builds a ~1 GiB mixed tree (about 20,000 small files in nested directories
with long names, and 40 files of 10-30 MiB), masters it as ISO 9660 with
`genisoimage -J -R` and as FAT32 with `mkfs.fat` + `mcopy -s`, then times
extracting each image into a tmpfs (/dev/shm, so the disk does not drown
the figures) with every tool, reporting the median of --runs runs and the
peak RSS. `cat IMAGE >/dev/null` and `cp -a` / `tar -x` of the source tree
are the limits.

`--fs mount` instead mounts each image with `mediafs mount` (FUSE) and times
`cp -a` of the whole tree out of the mount and a sequential read (`cat`) of
the large files, against fuseiso (ISO) and fusefat (FAT) on the same images
when they are installed; every run starts from a fresh mount, so that the
kernel's page cache of the mount is cold (the image itself stays in tmpfs).
A warm-cache `cp -a` (the mount's page cache already full) shows what
copying through FUSE costs by itself: `cp` cannot use copy_file_range out
of a FUSE mount, so it reads and writes every byte. The mount rows report
the FUSE server's peak RSS.

Not a test: run it by hand (`python3 bench/bench.py`); CI does not.
Needs: go, GNU time (/usr/bin/time, Debian package "time"), genisoimage,
bsdtar, 7zz, xorriso, mkfs.fat, mtools, sleuthkit; for --fs mount, fuse3
(and, to compare, fuseiso and fusefat).
"""

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, **kw)


def make_tree(root, small, large, seed=1):
    rnd = random.Random(seed)
    os.makedirs(root)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
             "hotel", "india", "juliett", "kilo", "lima", "mike", "november"]
    dirs = [root]
    for i in range(400):
        parent = rnd.choice(dirs) if len(dirs) < 8 or rnd.random() < 0.7 else root
        if parent.count(os.sep) - root.count(os.sep) > 6:
            parent = root
        d = os.path.join(parent, "%s %s directory %03d" % (rnd.choice(words), rnd.choice(words), i))
        os.makedirs(d)
        dirs.append(d)
    blob = os.urandom(1 << 20)
    for i in range(small):
        d = rnd.choice(dirs)
        n = int(rnd.lognormvariate(8.5, 1.2)) % (256 << 10)
        name = "%s-%s small file number %05d with a long name.dat" % (rnd.choice(words), rnd.choice(words), i)
        off = rnd.randrange(0, len(blob) - n) if n < len(blob) else 0
        with open(os.path.join(d, name), "wb") as f:
            f.write(blob[off:off + n])
    for i in range(large):
        d = rnd.choice(dirs)
        n = rnd.randrange(10 << 20, 30 << 20)
        with open(os.path.join(d, "large file %02d.bin" % i), "wb") as f:
            f.write(os.urandom(n))


def tree_bytes(root):
    total = 0
    for dp, _, fns in os.walk(root):
        for fn in fns:
            total += os.lstat(os.path.join(dp, fn)).st_size
    return total


def measure(cmd, dest, runs, setup=None):
    """Median wall time and peak RSS (KiB) of cmd over runs, by GNU time.
    setup, if given, runs (untimed) before each run."""
    times, rss = [], []
    for _ in range(runs):
        if dest:
            shutil.rmtree(dest, ignore_errors=True)
            os.makedirs(dest)
        if setup:
            setup()
        p = subprocess.run(["/usr/bin/time", "-f", "%e %M", "/bin/sh", "-c", "exec " + cmd],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        last = p.stderr.strip().splitlines()[-1].split()
        if p.returncode != 0:
            print("  ! %s exited %d: %s" % (cmd, p.returncode, p.stderr.strip()[-300:]), file=sys.stderr)
        times.append(float(last[0]))
        rss.append(int(last[1]))
    if dest:
        shutil.rmtree(dest, ignore_errors=True)
    return statistics.median(times), max(rss)


def pids_of_mount(mnt):
    """PIDs of the processes that serve the FUSE mount at mnt (by their
    command line, since fuseiso and fusefat daemonize)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if mnt.encode() in args and int(pid) != os.getpid():
            out.append(int(pid))
    return out


def peak_rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            m = re.search(r"VmHWM:\s+(\d+) kB", f.read())
            return int(m.group(1)) if m else 0
    except OSError:
        return 0


class Mount:
    """A FUSE mount made by cmd (a list, ending with the mount point); the
    server may stay in the foreground (mediafs) or daemonize (fuseiso,
    fusefat)."""

    def __init__(self, cmd, mnt):
        self.cmd, self.mnt, self.proc, self.rss = cmd, mnt, None, 0

    def up(self):
        os.makedirs(self.mnt, exist_ok=True)
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 20
        while not os.path.ismount(self.mnt):
            if time.time() > deadline:
                raise SystemExit("%s did not mount" % " ".join(self.cmd))
            time.sleep(0.02)

    def down(self):
        for pid in pids_of_mount(self.mnt):
            self.rss = max(self.rss, peak_rss_kib(pid))
        for _ in range(50):
            if not os.path.ismount(self.mnt):
                break
            subprocess.run(["fusermount3", "-u", self.mnt], stderr=subprocess.DEVNULL)
            time.sleep(0.05)
        if self.proc:
            self.proc.wait(timeout=30)
            self.proc = None

    def fresh(self):
        self.down()
        self.up()


def large_files(root, mnt):
    """The tree's large files (over 5 MiB), as paths under mnt."""
    out = []
    for dp, _, fns in os.walk(root):
        for fn in fns:
            p = os.path.join(dp, fn)
            if os.lstat(p).st_size > 5 << 20:
                out.append(os.path.join(mnt, os.path.relpath(p, root)))
    return sorted(out)


def quote(p):
    return "'" + p.replace("'", "'\\''") + "'"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/dev/shm/mediafs-bench", help="scratch directory (tmpfs)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--small", type=int, default=20000)
    ap.add_argument("--large", type=int, default=40)
    ap.add_argument("--fs", choices=["iso", "fat", "put", "mount", "all"], default="all",
                    help="which comparison; 'all' is every one but 'mount'")
    ap.add_argument("--keep", action="store_true", help="keep the tree and images for the next run")
    args = ap.parse_args()

    w = args.work
    tree = os.path.join(w, "tree")
    out = os.path.join(w, "out")
    os.makedirs(w, exist_ok=True)
    mediafs = os.path.join(w, "mediafs")
    sh("cd %s && go build -o %s ./cmd/mediafs" % (REPO, mediafs))
    if not os.path.isdir(tree):
        print("making the tree ...", file=sys.stderr)
        make_tree(tree, args.small, args.large)
    size = tree_bytes(tree)
    print("tree: %.2f GiB in %d small and %d large files" % (size / 2**30, args.small, args.large))
    tarball = os.path.join(w, "tree.tar")
    if not os.path.exists(tarball):
        sh("tar -C %s -cf %s ." % (tree, tarball))

    rows = []

    def row(name, cmd, dest=True, setup=None):
        t, kb = measure(cmd, out if dest else None, args.runs, setup)
        rows.append((name, t, kb))
        print("  %-34s %7.2f s  %7.1f MiB" % (name, t, kb / 1024), file=sys.stderr)

    row("cp -a (source tree)", "cp -a %s/. %s/" % (tree, out))
    row("tar -x (source tree)", "tar -C %s -xf %s" % (out, tarball))

    iso = os.path.join(w, "tree.iso")
    img = os.path.join(w, "tree.fat32")

    def make_iso():
        if not os.path.exists(iso):
            sh("genisoimage -quiet -J -R -joliet-long -o %s %s" % (iso, tree))

    def make_fat():
        if not os.path.exists(img):
            sh("truncate -s %d %s && mkfs.fat -F 32 -n BENCH %s >/dev/null" % (int(size * 1.15) + (64 << 20), img, img))
            sh("MTOOLS_SKIP_CHECK=1 mcopy -s -i %s %s/* ::/" % (img, tree))

    if args.fs == "mount":
        mnt = os.path.join(w, "mnt")
        make_iso()
        make_fat()
        bigs = " ".join(quote(p) for p in large_files(tree, mnt))

        def mounted(name, m):
            """cp -a and cat of the large files out of mount m, each run on
            a fresh mount."""
            m.up()
            try:
                t, _ = measure("cp -a %s/. %s/" % (mnt, out), out, args.runs, setup=m.fresh)
                rows.append((name + ": cp -a", t, m.rss))
                print("  %-34s %7.2f s" % (name + ": cp -a", t), file=sys.stderr)
                # The same with the mount's page cache warm (the last run
                # filled it): what cp -a costs through FUSE at all.
                t, _ = measure("cp -a %s/. %s/" % (mnt, out), out, args.runs)
                rows.append((name + ": cp -a, warm cache", t, m.rss))
                print("  %-34s %7.2f s" % (name + ": cp -a, warm cache", t), file=sys.stderr)
                t, _ = measure("cat %s >/dev/null" % bigs, None, args.runs, setup=m.fresh)
                rows.append((name + ": cat large files", t, m.rss))
                print("  %-34s %7.2f s" % (name + ": cat large files", t), file=sys.stderr)
            finally:
                m.down()

        row("cat large files (source tree)", "cat %s >/dev/null" % " ".join(
            quote(p) for p in large_files(tree, tree)), dest=False)
        rows.append(("-- ISO 9660 (genisoimage -J -R) --", None, None))
        mounted("mediafs mount", Mount([mediafs, "mount", "-q", iso, mnt], mnt))
        if shutil.which("fuseiso"):
            mounted("fuseiso", Mount(["fuseiso", "-n", iso, mnt, "-f"], mnt))
        rows.append(("-- FAT32 (mkfs.fat + mcopy -s) --", None, None))
        mounted("mediafs mount", Mount([mediafs, "mount", "-q", img, mnt], mnt))
        if shutil.which("fusefat"):
            mounted("fusefat", Mount(["fusefat", "-o", "ro", img, mnt, "-f"], mnt))

    if args.fs in ("iso", "all"):
        make_iso()
        rows.append(("-- ISO 9660 (genisoimage -J -R) --", None, None))
        row("cat IMAGE >/dev/null", "cat %s" % iso, dest=False)
        row("mediafs extract", "%s extract -q %s %s" % (mediafs, iso, out))
        row("bsdtar -xf", "bsdtar -C %s -xf %s" % (out, iso))
        row("7zz x", "7zz x -y -o%s %s" % (out, iso))
        row("xorriso -osirrox on -extract", "xorriso -osirrox on -indev stdio:%s -extract / %s" % (iso, out))

    if args.fs in ("fat", "all"):
        make_fat()
        rows.append(("-- FAT32 (mkfs.fat + mcopy -s) --", None, None))
        row("cat IMAGE >/dev/null", "cat %s" % img, dest=False)
        row("mediafs extract", "%s extract -q %s %s" % (mediafs, img, out))
        row("mcopy -s", "env MTOOLS_SKIP_CHECK=1 mcopy -s -n -i %s ::/ %s" % (img, out))
        row("7zz x", "7zz x -y -o%s %s" % (out, img))
        row("tsk_recover", "tsk_recover -a %s %s" % (img, out))

    if args.fs in ("put", "all"):
        # Filling a fresh FAT32 image with the tree (issue: put -r against
        # mcopy -s). The image is made anew, untimed, before every run.
        img = os.path.join(w, "fill.fat32")
        imgsize = int(size * 1.15) + (64 << 20)
        imgsize -= imgsize % 512

        def fresh():
            if os.path.exists(img):
                os.remove(img)
            sh("%s mkfs --type fat32 --size %d %s" % (mediafs, imgsize, img))

        tops = " ".join("'%s'" % os.path.join(tree, e) for e in sorted(os.listdir(tree)))
        rows.append(("-- filling a fresh FAT32 image --", None, None))
        row("mediafs put -r", "%s put -r -q %s %s /" % (mediafs, img, tops), dest=False, setup=fresh)
        row("mcopy -s", "env MTOOLS_SKIP_CHECK=1 mcopy -s -i %s %s ::/" % (img, tops), dest=False, setup=fresh)
        if os.path.exists(img):
            os.remove(img)
        # What moving the bytes costs with no file system at all: every
        # file's bytes written into one file, as an image writer must.
        raw = os.path.join(w, "raw.out")

        def no_raw():
            if os.path.exists(raw):
                os.remove(raw)

        rows.append(("-- no file system: the tree's bytes into one file --", None, None))
        row("tar -c", "tar -cf %s -C %s ." % (raw, tree), dest=False, setup=no_raw)
        row("cat of every file", "sh -c %s" % quote("find %s -type f -print0 | xargs -0 cat > %s" % (quote(tree), quote(raw))),
            dest=False, setup=no_raw)
        no_raw()

    print()
    print("| tool | median (s) | peak RSS (MiB) |")
    print("|---|---:|---:|")
    for name, t, kb in rows:
        if t is None:
            print("| **%s** | | |" % name.strip("- "))
        else:
            print("| %s | %.2f | %.1f |" % (name, t, kb / 1024))
    if not args.keep:
        shutil.rmtree(w, ignore_errors=True)


if __name__ == "__main__":
    main()
