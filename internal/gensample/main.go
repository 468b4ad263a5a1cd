// Command gensample writes testdata/sample.iso, the small image the README's
// first command runs on: ISO 9660 with Rock Ridge and Joliet, and a logical
// block size of 512 bytes, the kind of disc Windows NT 4.0's CDFS could not
// read (KB Q142687) and bsdtar, 7-Zip and isoinfo still cannot. Its files
// are packed block by block, so most start and end in the middle of a
// 2048-byte sector. Run it through testdata/make-sample.sh.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing/fstest"
	"time"

	"github.com/mediafs/mediafs/iso9660/mkiso"
)

func main() {
	out := flag.String("o", "testdata/sample.iso", "output image")
	lbs := flag.Int("block-size", 512, "logical block size: 512, 1024 or 2048")
	flag.Parse()

	when := time.Date(1996, 8, 24, 12, 0, 0, 0, time.UTC) // NT 4.0's release month
	file := func(s string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte(s), Mode: 0o644, ModTime: when}
	}
	var table strings.Builder
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&table, "%3d  sector %5d  block %5d\n", i, i/4, i)
	}
	src := fstest.MapFS{
		"README.TXT": file("This disc uses 512-byte logical blocks (ECMA-119 6.2.2 allows\n" +
			"512, 1024 and 2048). Windows NT 4.0 failed on such discs with\n" +
			"\"Error performing inpage operation\" (Microsoft KB Q142687).\n"),
		"docs/Release notes with a long name.txt": file("Rock Ridge and Joliet keep long, mixed-case names.\n"),
		"docs/blocks.txt":                         file(table.String()),
		"docs/empty.txt":                          file(""),
		"src/hello/hello.c":                       file("#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n"),
		"src/hello/Makefile":                      file("hello: hello.c\n\tcc -o $@ $<\n"),
		"src/latest":                              &fstest.MapFile{Data: []byte("hello"), Mode: os.ModeSymlink | 0o777, ModTime: when},
		"data/odd-3000-bytes.bin":                 {Data: pattern(3000), Mode: 0o644, ModTime: when},
		"data/next-block.bin":                     {Data: pattern(700), Mode: 0o644, ModTime: when},
		"data/four-sectors.bin":                   {Data: pattern(8193), Mode: 0o600, ModTime: when},
		"src":                                     {Mode: os.ModeDir | 0o755, ModTime: when},
		"docs":                                    {Mode: os.ModeDir | 0o755, ModTime: when},
		"data":                                    {Mode: os.ModeDir | 0o755, ModTime: when},
		"src/hello":                               {Mode: os.ModeDir | 0o755, ModTime: when},
	}
	man, err := mkiso.WriteFile(*out, src, mkiso.Options{BlockSize: *lbs, VolumeID: "MEDIAFS_SAMPLE", Joliet: true, RockRidge: true, ModTime: when})
	if err != nil {
		fmt.Fprintln(os.Stderr, "gensample:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %d bytes, %d logical blocks of %d\n", *out, man.ImageSize, man.VolumeBlocks, man.BlockSize)
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}
