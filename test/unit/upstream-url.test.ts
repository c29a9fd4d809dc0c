/** Upstream proxy URLs as users write them, and the password never shown. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { describeChain, maskUrl, parseProxyUrl } from '../../src/upstream/url.js';
import { UsageError } from '../../src/errors.js';

describe('proxy URLs', () => {
  it('accepts every supported scheme, with and without credentials', () => {
    const cases: [string, unknown][] = [
      ['socks5://192.0.2.1:1080', { kind: 'socks5', host: '192.0.2.1', port: 1080, display: 'socks5://192.0.2.1:1080' }],
      ['socks5h://proxy.example:1080', { kind: 'socks5', host: 'proxy.example', port: 1080, display: 'socks5://proxy.example:1080' }],
      [
        'socks5://alice:s3cret@192.0.2.1:1080',
        { kind: 'socks5', host: '192.0.2.1', port: 1080, auth: { user: 'alice', password: 's3cret' }, display: 'socks5://alice:***@192.0.2.1:1080' },
      ],
      [
        'socks4://bob@192.0.2.2:1080',
        { kind: 'socks4', host: '192.0.2.2', port: 1080, auth: { user: 'bob', password: '' }, display: 'socks4://bob@192.0.2.2:1080' },
      ],
      ['socks4a://192.0.2.3:1080/', { kind: 'socks4a', host: '192.0.2.3', port: 1080, display: 'socks4a://192.0.2.3:1080' }],
      [
        'http://u%40corp:p%3Ass@[2001:db8::1]:3128',
        { kind: 'http', host: '2001:db8::1', port: 3128, auth: { user: 'u@corp', password: 'p:ss' }, display: 'http://u%40corp:***@[2001:db8::1]:3128' },
      ],
    ];
    for (const [text, want] of cases) assert.deepEqual(parseProxyUrl(text), want, text);
  });

  it('rejects what is not a proxy URL, naming it with the password masked', () => {
    const cases: [string, RegExp][] = [
      ['not a url', /^'not a url' is not a proxy URL/],
      ['ftp://192.0.2.1:21', /^'ftp:\/\/192\.0\.2\.1:21': unsupported scheme 'ftp:' \(socks5, socks4, socks4a or http\)$/],
      ['https://192.0.2.1:443', /unsupported scheme 'https:'/],
      ['socks5://alice:s3cret@192.0.2.1', /^'socks5:\/\/alice:\*\*\*@192\.0\.2\.1': no port \(e\.g\. socks5:\/\/192\.0\.2\.1:1080\)$/],
      ['http://192.0.2.1', /no port \(e\.g\. http:\/\/192\.0\.2\.1:3128\)$/],
      ['http://192.0.2.1:3128/path', /a proxy URL has no path$/],
      ['http://192.0.2.1:3128/?q=1', /a proxy URL has no query or fragment$/],
      ['socks4://bob:s3cret@192.0.2.1:1080', /SOCKS4 has a user id but no password$/],
      ['socks5://:s3cret@192.0.2.1:1080', /a password needs a user name$/],
      ['socks5://%zz:s3cret@192.0.2.1:1080', /the user name has a bad %-escape/],
      ['http://u:%E0%A4%A@192.0.2.1:3128', /the password has a bad %-escape/],
    ];
    for (const [text, want] of cases) {
      assert.throws(
        () => parseProxyUrl(text),
        (err: unknown) => err instanceof UsageError && want.test(err.message) && !err.message.includes('s3cret'),
        text,
      );
    }
  });

  it('masks passwords in any text and shows chains in order', () => {
    assert.equal(maskUrl('via socks5://a:b@h:1 and http://c:d@[::1]:2'), 'via socks5://a:***@h:1 and http://c:***@[::1]:2');
    assert.equal(maskUrl('socks5://alice@h:1'), 'socks5://alice@h:1');
    const chain = ['http://192.0.2.61:3128', 'socks5://u:p@192.0.2.62:1080'].map((u) => parseProxyUrl(u));
    assert.equal(describeChain(chain), 'http://192.0.2.61:3128 -> socks5://u:***@192.0.2.62:1080');
  });
});
