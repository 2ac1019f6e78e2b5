import { createHash, createHmac } from 'node:crypto';
import { expect } from 'chai';
import { Sha256 as SdkSha256 } from '@smithy/core/checksum';
import { clearCredentialCache, SignatureV4 } from '@smithy/signature-v4';
import { hmacKey, Sha256 } from '../../src/lambda/sha256.ts';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const utf8 = (text: string) => new TextEncoder().encode(text);

describe('sha256 for request signing (HMAC keys imported once)', () => {
  it('gives the digests of Node crypto for string, Uint8Array, Buffer, ArrayBuffer, offset and empty secrets, and for no secret', async () => {
    const secretBytes = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) % 256);
    const wide = Uint8Array.from({ length: 64 }, (_, i) => 255 - i);
    const secrets: Array<[string, string | ArrayBuffer | ArrayBufferView, Buffer | string]> = [
      ['string', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY'],
      ['Uint8Array', secretBytes, Buffer.from(secretBytes)],
      ['Buffer', Buffer.from(secretBytes), Buffer.from(secretBytes)],
      ['ArrayBuffer', secretBytes.slice().buffer, Buffer.from(secretBytes)],
      ['subarray at offset 16', wide.subarray(16, 48), Buffer.from(wide.subarray(16, 48))],
      ['DataView at offset 8', new DataView(wide.buffer, 8, 24), Buffer.from(wide.subarray(8, 32))],
      ['empty Uint8Array', new Uint8Array(0), Buffer.alloc(0)],
    ];
    for (const [name, secret, key] of secrets) {
      const ours = new Sha256(secret);
      ours.update(utf8('AWS4-HMAC-SHA256\n20261203T120000Z\n'));
      ours.update(utf8('20261203/us-east-1/lambda/aws4_request'));
      const expected = createHmac('sha256', key)
        .update('AWS4-HMAC-SHA256\n20261203T120000Z\n20261203/us-east-1/lambda/aws4_request')
        .digest('hex');
      expect(hex(await ours.digest()), name).to.equal(expected);
    }
    const plain = new Sha256();
    plain.update(utf8('{"invocationId":"42"}'));
    expect(hex(await plain.digest())).to.equal(createHash('sha256').update('{"invocationId":"42"}').digest('hex'));
  });

  it('behaves as the SDK default across digest, update and reset', async () => {
    for (const secret of [undefined, Uint8Array.of(1, 2, 3)]) {
      const [ours, sdk] = [new Sha256(secret), new SdkSha256(secret)];
      for (const h of [ours, sdk]) h.update(utf8('first'));
      expect(hex(await ours.digest())).to.equal(hex(await sdk.digest()));
      // A plain hash may be digested and then updated further; an HMAC is finished by its digest.
      if (secret === undefined) {
        for (const h of [ours, sdk]) h.update(utf8('second'));
        expect(hex(await ours.digest())).to.equal(hex(await sdk.digest()));
      } else {
        expect(() => ours.update(utf8('second'))).to.throw(/already finished/);
      }
      for (const h of [ours, sdk]) {
        h.reset();
        h.update(utf8('after reset'));
      }
      expect(hex(await ours.digest())).to.equal(hex(await sdk.digest()));
    }
  });

  it('imports a binary key once per array, and again when the array holds other bytes', () => {
    const key = Uint8Array.of(9, 8, 7, 6);
    const first = hmacKey(key);
    expect(hmacKey(key)).to.equal(first);
    // The same bytes in another array are imported for that array.
    expect(hmacKey(Uint8Array.of(9, 8, 7, 6))).to.not.equal(first);
    key[0] = 1;
    const changed = hmacKey(key);
    expect(changed).to.not.equal(first);
    expect(hex(new Uint8Array((changed as { export(): Buffer }).export()))).to.equal('01080706');
  });

  it('signs the AWS Signature V4 test suite request (get-vanilla) as AWS publishes it', async () => {
    clearCredentialCache();
    const signer = new SignatureV4({
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
      region: 'us-east-1',
      service: 'service',
      sha256: Sha256,
      // The suite's requests carry no x-amz-content-sha256 header.
      applyChecksum: false,
    });
    const signed = await signer.sign(
      {
        method: 'GET',
        protocol: 'https:',
        hostname: 'example.amazonaws.com',
        path: '/',
        query: {},
        headers: { host: 'example.amazonaws.com' },
      },
      { signingDate: new Date(Date.UTC(2015, 7, 30, 12, 36, 0)) },
    );
    expect(signed.headers.authorization).to.equal(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, ' +
        'Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    );
  });

  it('signs a Lambda Invoke exactly as the SDK default does, each deriving its own signing key, request after request', async () => {
    const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
    const signer = (sha256: typeof Sha256 | typeof SdkSha256) =>
      new SignatureV4({ credentials, region: 'eu-west-1', service: 'lambda', sha256, uriEscapePath: true });
    const [ours, sdk] = [signer(Sha256), signer(SdkSha256)];
    for (let i = 0; i < 3; i += 1) {
      const request = () => ({
        method: 'POST',
        protocol: 'https:',
        hostname: 'lambda.eu-west-1.amazonaws.com',
        path: '/2015-03-31/functions/thumbnails/invocations',
        query: {},
        headers: { host: 'lambda.eu-west-1.amazonaws.com', 'x-amz-invocation-type': 'Event', 'content-type': 'application/octet-stream' },
        body: `{"invocationId":"${i}"}`,
      });
      // Request 1 is on another day: a new signing key. The SDK caches signing keys for every signer of the
      // process, so each signer starts from an empty cache and derives the key itself.
      const signingDate = new Date(Date.UTC(2026, 11, 3 + (i === 1 ? 1 : 0), 12, 0, i));
      clearCredentialCache();
      const a = await ours.sign(request(), { signingDate });
      clearCredentialCache();
      const b = await sdk.sign(request(), { signingDate });
      expect(a.headers.authorization)
        .to.be.a('string')
        .and.match(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/2026120[34]\/eu-west-1\/lambda/);
      expect(a.headers.authorization).to.equal(b.headers.authorization);
      // Signed again from the cached key: the key imported for it is used, and still gives the same signature.
      const again = await ours.sign(request(), { signingDate });
      expect(again.headers.authorization).to.equal(b.headers.authorization);
    }
  });
});
