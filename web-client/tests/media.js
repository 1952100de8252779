// Debian's ffprobe and ffmpeg, as the recording tests use them.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export const run = promisify(execFile);

/// ffprobe's JSON for the `entries` of the `streams` (v, a) of a file or URL.
export async function ffprobe(url, entries, streams = 'v') {
  const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', streams,
    '-show_entries', entries, '-of', 'json', url], { timeout: 30_000 });
  return JSON.parse(stdout);
}

/// ffmpeg decodes every frame of `url`, stopping at the first error.
export async function decodes(url) {
  await run('ffmpeg', ['-v', 'error', '-xerror', '-i', url, '-f', 'null', '-'], { timeout: 60_000 });
}
