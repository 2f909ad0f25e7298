//! A hostile server on loopback in front of `jobsim`: it echoes the credentials it receives into
//! every field of every answer, redirects elsewhere, answers huge and slowly. No canary may
//! appear in any output or file, and no request may reach any host but the endpoint.
