import { expect } from 'chai';
import { nextMemoryRelease, startMemoryRelease, type MemoryReleaseState } from '../../src/ops/memory-release.ts';
import { silentLogger } from '../../src/ops/logger.ts';

const MB = 1024 * 1024;
const policy = { quietUtilization: 0.1, quietSamples: 3, maxQuietSamples: 60, minGrowthBytes: 8 * MB };

/** Feeds the samples in turn; returns the indexes of the samples that released. */
function releases(start: MemoryReleaseState, samples: Array<[utilization: number, rssMb: number]>): number[] {
  let state = start;
  const at: number[] = [];
  samples.forEach(([utilization, rssMb], i) => {
    const next = nextMemoryRelease(state, { utilization, rssBytes: rssMb * MB }, policy);
    state = next.state;
    if (next.release) at.push(i);
  });
  return at;
}

describe('nextMemoryRelease', () => {
  const start = { quiet: 0, baselineBytes: 100 * MB };
  const cases: Array<{ name: string; samples: Array<[number, number]>; expected: number[] }> = [
    {
      name: 'releases on the third quiet sample after the resident set grew by the minimum',
      samples: [
        [0.9, 140],
        [0.02, 140],
        [0.02, 140],
        [0.02, 140],
      ],
      expected: [3],
    },
    {
      name: 'does not release while the loop stays busy, however large the growth',
      samples: [
        [0.5, 200],
        [0.5, 210],
        [0.5, 220],
        [0.5, 230],
      ],
      expected: [],
    },
    {
      name: 'starts counting quiet samples again after a busy one',
      samples: [
        [0.02, 140],
        [0.02, 140],
        [0.4, 140],
        [0.02, 140],
        [0.02, 140],
        [0.02, 140],
      ],
      expected: [5],
    },
    {
      name: 'does not release an idle controller that grew by less than the minimum',
      samples: [
        [0.01, 107],
        [0.01, 107],
        [0.01, 107],
        [0.01, 107],
        [0.01, 107],
      ],
      expected: [],
    },
    {
      name: 'measures growth from the lowest resident set seen, not from the start',
      samples: [
        [0.01, 90],
        [0.01, 95],
        [0.01, 97],
        [0.01, 99],
      ],
      expected: [3],
    },
    {
      name: 'a burst soon after a release doubles the quiet the next release waits for',
      samples: [
        [0.9, 140],
        [0.02, 140],
        [0.02, 140],
        [0.02, 140], // released
        [0.02, 100],
        [0.9, 140], // busy again 2 samples after it
        [0.02, 140],
        [0.02, 140],
        [0.02, 140], // 3 quiet: no longer enough
        [0.02, 140],
        [0.02, 140],
        [0.02, 140],
      ],
      expected: [3, 11],
    },
    {
      name: 'bursts every few seconds stop the releases once the quiet needed outgrows their gaps',
      samples: Array.from({ length: 6 }, (): Array<[number, number]> => [
        [0.9, 140],
        [0.02, 140],
        [0.02, 140],
        [0.02, 140],
        [0.02, 140],
      ]).flat(),
      expected: [3],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(releases(start, c.samples)).to.deep.equal(c.expected);
    });
  }

  it('a long quiet after a release halves the quiet needed again, but never below quietSamples', () => {
    const state: MemoryReleaseState = { quiet: 0, baselineBytes: 100 * MB, needed: 6, sinceRelease: 0 };
    let next = { state, release: false };
    for (let i = 0; i < 23; i += 1) next = nextMemoryRelease(next.state, { utilization: 0, rssBytes: 100 * MB }, policy);
    expect(next.state.needed, 'before 4 times the quiet it waited for').to.equal(6);
    next = nextMemoryRelease(next.state, { utilization: 0, rssBytes: 100 * MB }, policy);
    expect(next.state.needed).to.equal(3);
    expect(next.state.sinceRelease).to.equal(undefined);
    const again = nextMemoryRelease({ ...next.state, sinceRelease: 100 }, { utilization: 0, rssBytes: 100 * MB }, policy);
    expect(again.state.needed).to.equal(3);
  });

  it('never waits for more than maxQuietSamples', () => {
    const next = nextMemoryRelease(
      { quiet: 0, baselineBytes: 100 * MB, needed: 40, sinceRelease: 1 },
      { utilization: 0.9, rssBytes: 140 * MB },
      policy,
    );
    expect(next.state.needed).to.equal(60);
  });

  it('waits for another full run of quiet samples after a release', () => {
    const first = nextMemoryRelease({ quiet: 2, baselineBytes: 100 * MB }, { utilization: 0, rssBytes: 150 * MB }, policy);
    expect(first.release).to.equal(true);
    expect(first.state.quiet).to.equal(0);
  });
});

describe('startMemoryRelease', function () {
  this.timeout(30_000);

  it('gives back the pages of a burst of garbage once the event loop is quiet', async () => {
    const keep: unknown[][] = [];
    const freed = new Promise<number>((resolve, reject) => {
      const release = startMemoryRelease({
        logger: silentLogger(),
        policy: { sampleMs: 100, quietSamples: 3, minGrowthBytes: 1 },
        onRelease: (bytes) => {
          release.stop();
          resolve(bytes);
        },
      });
      setTimeout(() => {
        release.stop();
        reject(new Error('no memory release within 10 s of quiet'));
      }, 10_000).unref();
    });
    // A burst, after the release has read the resident set: about 100 MB allocated, most of it garbage by
    // the end, as a burst of invokes leaves it.
    for (let round = 0; round < 40; round += 1) {
      keep.push(Array.from({ length: 50_000 }, (_, i) => ({ round, i, text: `row ${i}` })));
      if (keep.length > 4) keep.shift();
    }
    keep.length = 0;
    expect(await freed, 'resident bytes the release gave back').to.be.greaterThan(5 * MB);
  });
});
