"""Where the code comes from: hardened git, the operator's mirrors, the cache of checkouts and pins."""
