package main

import (
	"math/rand/v2"
	"testing"
)

func TestExtents(t *testing.T) {
	var e extents
	for _, a := range [][2]int64{{100, 10}, {0, 10}, {50, 10}, {10, 5}, {105, 20}, {60, 0}, {200, 1}} {
		e.add(a[0], a[1])
	}
	want := []extent{{0, 15}, {50, 60}, {100, 125}, {200, 201}}
	if len(e.r) != len(want) {
		t.Fatalf("ranges %v, want %v", e.r, want)
	}
	for i := range want {
		if e.r[i] != want[i] {
			t.Fatalf("ranges %v, want %v", e.r, want)
		}
	}
	for _, tt := range []struct{ off, n, missing int64 }{
		{0, 15, 0}, {0, 16, 1}, {14, 40, 35}, {45, 100, 65}, {125, 75, 75}, {200, 1, 0}, {300, 0, 0},
	} {
		if got := e.missing(tt.off, tt.n); got != tt.missing {
			t.Errorf("missing(%d, %d) = %d, want %d", tt.off, tt.n, got, tt.missing)
		}
	}
	e.add(14, 200)
	if len(e.r) != 1 || e.r[0] != (extent{0, 214}) {
		t.Errorf("merged all: %v", e.r)
	}
}

// Random writes agree with a byte map.
func TestExtentsRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var e extents
	written := make([]bool, 4096)
	for range 300 {
		off, n := r.Int64N(4000), r.Int64N(40)
		e.add(off, n)
		for i := off; i < off+n; i++ {
			written[i] = true
		}
	}
	for range 1000 {
		off, n := r.Int64N(4000), r.Int64N(90)
		var want int64
		for i := off; i < off+n; i++ {
			if !written[i] {
				want++
			}
		}
		if got := e.missing(off, n); got != want {
			t.Fatalf("missing(%d, %d) = %d, want %d", off, n, got, want)
		}
	}
	for i := 1; i < len(e.r); i++ {
		if e.r[i].start <= e.r[i-1].end {
			t.Fatalf("ranges not merged: %v %v", e.r[i-1], e.r[i])
		}
	}
}

func TestExtentsOverflow(t *testing.T) {
	var e extents
	for i := range int64(maxExtents + 1) {
		e.add(i*2, 1)
	}
	if !e.overflow || e.r != nil {
		t.Errorf("overflow %v with %d ranges", e.overflow, len(e.r))
	}
}
