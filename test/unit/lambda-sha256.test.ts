import { createHash, createHmac } from 'node:crypto';
import { expect } from 'chai';
import { Sha256 as SdkSha256 } from '@smithy/core/checksum';
import { SignatureV4 } from '@smithy/signature-v4';
import { hmacKey, Sha256 } from '../../src/lambda/sha256.ts';

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
const utf8 = (text: string) => new TextEncoder().encode(text);

describe('sha256 for request signing (HMAC keys imported once)', () => {
  it('gives the digests of Node crypto for string, Uint8Array, Buffer and ArrayBuffer secrets, and for no secret', async () => {
    const secretBytes = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) % 256);
    const secrets = ['wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', secretBytes, Buffer.from(secretBytes), secretBytes.slice().buffer];
    for (const secret of secrets) {
      const ours = new Sha256(secret);
      ours.update(utf8('AWS4-HMAC-SHA256\n20261203T120000Z\n'));
      ours.update(utf8('20261203/us-east-1/lambda/aws4_request'));
      const key = typeof secret === 'string' ? secret : Buffer.from(secret instanceof ArrayBuffer ? new Uint8Array(secret) : secret);
      const expected = createHmac('sha256', key)
        .update('AWS4-HMAC-SHA256\n20261203T120000Z\n20261203/us-east-1/lambda/aws4_request')
        .digest('hex');
      expect(hex(await ours.digest()), `secret ${secret.constructor.name}`).to.equal(expected);
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

  it('signs a Lambda Invoke exactly as the SDK default does, request after request', async () => {
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
      const signingDate = new Date(Date.UTC(2026, 11, 3, 12, 0, i));
      const [a, b] = await Promise.all([ours.sign(request(), { signingDate }), sdk.sign(request(), { signingDate })]);
      expect(a.headers.authorization)
        .to.be.a('string')
        .and.match(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/20261203\/eu-west-1\/lambda/);
      expect(a.headers.authorization).to.equal(b.headers.authorization);
    }
  });
});
