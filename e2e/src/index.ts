// The e2e package has no library face: its tests start real processes, and bench/ holds benchmarks.
export {};
