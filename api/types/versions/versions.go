// Package versions compares dotted API version strings ("1.41" < "1.45"). Standard library only.
package versions

import (
	"strconv"
	"strings"
)

// Compare returns -1, 0 or 1. Missing or non-numeric parts count as 0, as dockerd does.
func Compare(v, other string) int {
	a, b := strings.Split(v, "."), strings.Split(other, ".")
	for i := 0; i < len(a) || i < len(b); i++ {
		var x, y int
		if i < len(a) {
			x, _ = strconv.Atoi(a[i])
		}
		if i < len(b) {
			y, _ = strconv.Atoi(b[i])
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// LessThan reports v < other.
func LessThan(v, other string) bool { return Compare(v, other) < 0 }

// GreaterThanOrEqualTo reports v >= other.
func GreaterThanOrEqualTo(v, other string) bool { return Compare(v, other) >= 0 }
