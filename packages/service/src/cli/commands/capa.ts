import type { Capabilities } from 'popwire';
import { report, type Json } from '../output.js';
import { sessionCommand } from '../session-command.js';

export const capa = sessionCommand({
  name: 'capa',
  description: "Print the server's capabilities (after login when the URL names a user)",
  needsLogin: false,
  async run(client) {
    // The client asked CAPA while connecting, and again after STLS and login: this answer is current.
    const capabilities = client.capabilities();
    return report(capabilities.lines, capabilitiesJson(capabilities));
  },
});

/**
 * Named field by field, not copied from the object: this JSON is a contract with scripts, and
 * must not change shape because the library grows a field. Absent values are null, not missing.
 */
function capabilitiesJson(caps: Capabilities): Json {
  return {
    lines: caps.lines,
    top: caps.top,
    uidl: caps.uidl,
    user: caps.user,
    pipelining: caps.pipelining,
    stls: caps.stls,
    respCodes: caps.respCodes,
    authRespCode: caps.authRespCode,
    utf8: caps.utf8,
    sasl: caps.sasl,
    loginDelay: caps.loginDelay ?? null,
    expire: caps.expire ?? null,
    implementation: caps.implementation ?? null,
  };
}
