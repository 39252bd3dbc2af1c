// Aisle Keys: small progressive enhancements (no inline script: CSP).
