/**
 * The classifier behind the outbound address policy: every kind of address an API caller could
 * aim the service at, in the spellings an attacker would pick to slip past a string check.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classify, parseAddress } from '../../src/net/address.ts';

const cases: ReadonlyArray<readonly [string, string]> = [
  // loopback, in every spelling getaddrinfo and WHATWG URLs accept
  ['127.0.0.1', 'loopback'],
  ['127.1', 'loopback'],
  ['0x7f.1', 'loopback'],
  ['0x7f000001', 'loopback'],
  ['2130706433', 'loopback'],
  ['017700000001', 'loopback'],
  ['0177.0.0.1', 'loopback'],
  ['127.0.0.1.', 'loopback'],
  ['127.255.255.254', 'loopback'],
  ['::1', 'loopback'],
  ['[::1]', 'loopback'],
  ['0:0:0:0:0:0:0:1', 'loopback'],
  ['::1%lo', 'loopback'],
  // IPv4 inside IPv6: mapped, compatible, NAT64, 6to4
  ['::ffff:127.0.0.1', 'loopback'],
  ['[::ffff:127.0.0.1]', 'loopback'],
  ['::ffff:7f00:1', 'loopback'],
  ['0:0:0:0:0:ffff:7f00:0001', 'loopback'],
  ['::ffff:10.0.0.1', 'private'],
  ['::ffff:169.254.169.254', 'link-local'],
  ['::ffff:8.8.8.8', 'ipv4-mapped'],
  ['::127.0.0.1', 'loopback'],
  ['::8.8.8.8', 'reserved'],
  ['64:ff9b::7f00:1', 'loopback'],
  ['64:ff9b::a00:1', 'private'],
  ['64:ff9b::808:808', 'public'],
  ['64:ff9b:1::1', 'reserved'],
  ['2002:7f00:1::', 'loopback'],
  ['2002:c0a8:101::1', 'private'],
  ['2002:808:808::1', 'public'],
  // RFC 1918, CGNAT, link-local and the metadata service
  ['10.0.0.1', 'private'],
  ['10.255.255.255', 'private'],
  ['172.16.0.1', 'private'],
  ['172.31.255.255', 'private'],
  ['192.168.1.1', 'private'],
  ['100.64.0.1', 'cgnat'],
  ['100.127.255.255', 'cgnat'],
  ['169.254.169.254', 'link-local'],
  ['0xa9.0xfe.0xa9.0xfe', 'link-local'],
  ['2852039166', 'link-local'],
  // IPv6 local ranges, with and without zone ids
  ['fc00::1', 'unique-local'],
  ['fd12:3456:789a::1', 'unique-local'],
  ['fe80::1', 'link-local'],
  ['fe80::1%eth0', 'link-local'],
  ['[fe80::1%25eth0]', 'link-local'],
  ['febf::1', 'link-local'],
  ['2606:4700::1111%eth0', 'link-local'],
  ['fec0::1', 'reserved'],
  // multicast, unspecified, broadcast, this network, reserved
  ['224.0.0.1', 'multicast'],
  ['239.255.255.250', 'multicast'],
  ['ff02::1', 'multicast'],
  ['0.0.0.0', 'unspecified'],
  ['0', 'unspecified'],
  ['::', 'unspecified'],
  ['0.1.2.3', 'this-network'],
  ['255.255.255.255', 'broadcast'],
  ['240.0.0.1', 'reserved'],
  ['192.0.2.1', 'reserved'],
  ['198.18.0.1', 'reserved'],
  ['2001:db8::1', 'reserved'],
  ['2001::1', 'reserved'],
  ['100::1', 'reserved'],
  ['4000::1', 'reserved'],
  // what stays reachable
  ['8.8.8.8', 'public'],
  ['172.15.255.255', 'public'],
  ['172.32.0.0', 'public'],
  ['100.63.255.255', 'public'],
  ['100.128.0.0', 'public'],
  ['193.0.0.1', 'public'],
  ['2606:4700:4700::1111', 'public'],
  ['2a00:1450:4001:80b::200e', 'public'],
];

describe('classify', () => {
  for (const [address, category] of cases) {
    it(`${address} is ${category}`, () => {
      assert.equal(classify(address)?.category, category);
    });
  }

  it('gives the canonical address, whatever the spelling', () => {
    assert.equal(classify('0x7f.1')?.address, '127.0.0.1');
    assert.equal(classify('[::ffff:127.0.0.1]')?.address, '::ffff:7f00:1');
    assert.deepEqual(classify('[::ffff:127.0.0.1]')?.embedded, { via: 'ipv4-mapped', address: '127.0.0.1' });
    assert.equal(classify('fe80::1%eth0')?.zone, 'eth0');
    assert.equal(classify('2001:0db8:0000:0000:0001:0000:0000:0001')?.address, '2001:db8::1:0:0:1');
  });

  it('is undefined for host names and for malformed addresses', () => {
    for (const text of ['localhost', 'pop.example.com', '1.2.3.4.5', '256.1.1.1', '1.2.3.0x100', '08.1.1.1', '4294967296', '1::2::3', '::ffff:1.2.3', '12345::', 'fe80::1%', '', '[::1', 'a.b.c.d']) {
      assert.equal(parseAddress(text), undefined, text);
    }
  });
});
