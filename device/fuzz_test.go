package device

import (
	"strings"
	"testing"
)

// Fuzz targets for the two text formats the device layer parses: GNU
// ddrescue mapfiles and cue sheets. Their seeds run as ordinary tests;
// `go test -fuzz FuzzParseMapfile ./device` explores further.

func FuzzParseMapfile(f *testing.F) {
	for _, s := range []string{
		"# Mapfile. Created by GNU ddrescue version 1.27\n0x00020000 + 1\n0x0 0x10000 +\n0x10000 0x200 -\n0x10200 0x400 /\n0x10600 0xFA00 +\n0x20000 0x1000 ?\n",
		"0 ?\n0 512 *\n512 512 -\n1024 0x7FFFFFFF ?\n",
		"0x0 + # comment\n0x0 0x200 + # trailing\n\n0x200 0x200 -\n",
		"0 +\n0x0 0x400 +\n0x200 0x200 -\n",
		"0 +\n0x3FFFFFFFFFFFFFFF 1 -\n",
		"0 F 2\n010 010 -\n",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		m, err := ParseMapfile(strings.NewReader(data))
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "line ") && !strings.Contains(msg, "no current position") {
				t.Errorf("error does not name the line: %v", err)
			}
			return
		}
		var end, badTotal int64
		for i, b := range m.Blocks {
			if b.Off < 0 || b.Len <= 0 || b.Off < end || !strings.ContainsRune("?*/-+", rune(b.Status)) {
				t.Fatalf("block %d %+v after end %d", i, b, end)
			}
			end = b.Off + b.Len
			if b.Status != '+' {
				badTotal += b.Len
			}
		}
		// The bad ranges are the non-finished blocks, merged: sorted,
		// disjoint, and as long in all.
		var prev, sum int64
		for i, r := range m.Bad() {
			if r.Len <= 0 || r.Off < prev {
				t.Fatalf("bad range %d %+v overlaps or precedes the one before (end %d)", i, r, prev)
			}
			prev = r.Off + r.Len
			sum += r.Len
		}
		if sum != badTotal {
			t.Fatalf("bad ranges hold %d bytes, the blocks %d", sum, badTotal)
		}
	})
}

func FuzzCue(f *testing.F) {
	for _, s := range []string{
		"FILE \"disc.bin\" BINARY\n  TRACK 01 MODE1/2352\n    INDEX 01 00:00:00\n",
		"FILE \"a b.bin\" BINARY\n  TRACK 01 AUDIO\n    INDEX 00 00:00:00\n    INDEX 01 00:02:00\n  TRACK 02 MODE2/2352\n    INDEX 01 12:34:56\n",
		"FILE x.iso BINARY\nTRACK 1 MODE1/2048\nINDEX 1 00:00:00\n",
		"FILE \"y.bin\" BINARY\nTRACK 01 MODE2/2336\nINDEX 01 99:59:74\n",
		"TRACK 01 MODE1/2352\nINDEX 01 00:00:00\n",
		"FILE \"z.bin\nTRACK 01 CDG\nINDEX 01 00:00:00\n",
		"FILE z.bin BINARY\nTRACK 01 MODE1/2352\nINDEX 01 00:60:00\n",
		"REM only a comment\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		tr, err := parseCue(strings.NewReader(data), "x.cue")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "x.cue") {
				t.Errorf("error does not name the sheet: %v", err)
			}
			return
		}
		if tr.file == "" || tr.frames < 0 || tr.line < 1 {
			t.Fatalf("track %+v", tr)
		}
		switch tr.stride {
		case cdSectorSize, 2336, RawSectorSize:
		default:
			t.Fatalf("stride %d", tr.stride)
		}
		// The start offset cannot overflow: minutes are at most 2^31-1.
		if start := tr.frames * int64(tr.stride); start < 0 {
			t.Fatalf("start %d", start)
		}
	})
}
