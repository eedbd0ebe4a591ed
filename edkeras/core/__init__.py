"""The base of edkeras: errors, strict schemas, atomic files, sphere geometry, the vMF distribution, detector constants."""
