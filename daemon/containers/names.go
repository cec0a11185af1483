package containers

import (
	"fmt"
	"math/rand/v2"
)

// Generated names read like dockerd's (adjective_name); collisions get a numeric suffix after retries.
var (
	adjectives = []string{"admiring", "brave", "busy", "clever", "dazzling", "eager", "elegant", "festive",
		"focused", "gallant", "happy", "jolly", "keen", "laughing", "loving", "nifty", "optimistic",
		"pensive", "quirky", "relaxed", "serene", "sharp", "stoic", "tender", "upbeat", "vibrant",
		"wizardly", "youthful", "zealous"}
	surnames = []string{"albattani", "babbage", "bohr", "curie", "darwin", "einstein", "euler", "fermi",
		"galileo", "hopper", "hypatia", "kepler", "lamport", "lovelace", "mccarthy", "meitner", "newton",
		"noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wozniak", "yalow"}
)

func randomName(retry int) string {
	n := adjectives[rand.IntN(len(adjectives))] + "_" + surnames[rand.IntN(len(surnames))]
	if retry > 0 {
		n = fmt.Sprintf("%s%d", n, rand.IntN(10))
	}
	return n
}
