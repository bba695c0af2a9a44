// Close codes, and which of them mean "do not reconnect on your own".

export const CLOSE = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL_ERROR: 1002,
  UNSUPPORTED_DATA: 1003,
  ABNORMAL: 1006,
  INVALID_PAYLOAD: 1007,
  POLICY: 1008,
  TOO_BIG: 1009,
  INTERNAL: 1011,
  BUSY: 1013,
  REPLACED: 4002,
});

/**
 * Codes after which reconnecting would only repeat the refusal (or fight
 * whoever took the session over): 1000 (the session ended), 1002/1003/1007/
 * 1008/1009/1010 (the server refused what this client sent or who it is),
 * and the application range 4000–4499 (4002: replaced by a resume
 * elsewhere). Everything else — 1001 going away, 1006 lost, 1011 engine
 * failure, 1012/1014, 4500–4999 — is worth a retry with backoff; 1013 is
 * "busy", retried after the server's retry_after_s.
 */
export function isTerminalClose(code) {
  return (
    code === 1000 ||
    code === 1002 ||
    code === 1003 ||
    (code >= 1007 && code <= 1010) ||
    (code >= 4000 && code <= 4499)
  );
}
