/** The mail the console's tests put in Dovecot: plain, with an attachment, HTML, and hostile HTML. */
const CRLF = '\r\n';

function mail(headers: Record<string, string>, body: string): Buffer {
  return Buffer.from([...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', body].join(CRLF).replace(/\r?\n/g, CRLF));
}

export function plainMessage(n: number, subject: string, from: string): Buffer {
  return mail(
    { From: from, To: 'Alice <alice@example.org>', Subject: subject, Date: `Mon, ${String(n).padStart(2, '0')} Dec 2026 10:00:00 +0000`, 'Message-ID': `<plain-${n}@example.org>` },
    `Hello Alice,\n\nthis is message ${n}: ${subject}.\n\nCarol`,
  );
}

export function attachmentMessage(): Buffer {
  return mail(
    {
      From: 'Dave <dave@example.org>',
      To: 'alice@example.org',
      Subject: 'Minutes attached',
      Date: 'Tue, 01 Dec 2026 09:00:00 +0000',
      'Message-ID': '<attach@example.org>',
      'MIME-Version': '1.0',
      'Content-Type': 'multipart/mixed; boundary="b1"',
    },
    ['--b1', 'Content-Type: text/plain; charset=utf-8', '', 'The minutes are attached.', '--b1', 'Content-Type: text/plain; name="minutes.txt"', 'Content-Disposition: attachment; filename="minutes.txt"', '', 'Minutes of the meeting.', '--b1--', ''].join('\n'),
  );
}

export function htmlMessage(): Buffer {
  return mail(
    { From: 'News <news@example.org>', To: 'alice@example.org', Subject: 'Weekly newsletter', Date: 'Wed, 02 Dec 2026 08:00:00 +0000', 'Message-ID': '<news@example.org>', 'MIME-Version': '1.0', 'Content-Type': 'text/html; charset=utf-8' },
    '<html><body><h1 style="color:#0b5cad">This week</h1><p>Everything is <b>fine</b>.</p></body></html>',
  );
}

/**
 * Everything a hostile sender tries at once: a script, an onerror handler on a remote image, a
 * javascript: link, a meta refresh, a remote style sheet and a nested frame. Each points at
 * `remote` (the test's own HTTP server, whose hits are counted too) or calls alert/console.
 */
export function hostileMessage(remote: string): Buffer {
  const html = [
    `<meta http-equiv="refresh" content="0; url=${remote}/refresh">`,
    `<link rel="stylesheet" href="${remote}/style.css">`,
    `<script>console.log('hostile script ran'); alert('script'); fetch('${remote}/script');</script>`,
    `<img src="${remote}/remote.png" alt="tracker" onerror="console.log('onerror ran'); alert('onerror')">`,
    `<img src="x-broken:" alt="broken" onerror="alert('onerror 2')">`,
    `<a href="javascript:alert('link')" id="js-link">Claim your prize</a>`,
    `<iframe src="${remote}/frame"></iframe>`,
    `<p>Hostile message body</p>`,
  ].join('\n');
  return mail(
    { From: 'Mallory <mallory@example.net>', To: 'alice@example.org', Subject: 'You won a prize', Date: 'Thu, 03 Dec 2026 08:00:00 +0000', 'Message-ID': '<hostile@example.net>', 'MIME-Version': '1.0', 'Content-Type': 'text/html; charset=utf-8' },
    html,
  );
}
