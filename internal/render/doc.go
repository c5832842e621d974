// Package render turns a Project and one ServiceCluster into the objects convoy wants in that
// cluster. Everything here is pure: no clients, no clocks, no randomness, so that the output
// can be table-tested and compared byte for byte between reconciles.
package render
