// One image build per `npm run test:containers`: every suite of
// test/deploy/containers runs this tag (inject('dptrainImage')), removed at
// the end (its layers stay cached for the next build). Where podman cannot
// run, nothing is built: the suites print why and skip (or fail, with
// DPTRAIN_REQUIRE_CONTAINERS=1).
import type { TestProject } from 'vitest/node';
import { BASE_IMAGE, buildImage, containersUnavailable, podman, REQUIRE_ENV } from './podman.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The image built from deploy/Dockerfile for this run ('' when containers cannot run here). */
    dptrainImage: string;
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const why = containersUnavailable();
  if (why !== undefined) {
    if (process.env[REQUIRE_ENV] === '1') throw new Error(`${REQUIRE_ENV}=1 but ${why}`);
    project.provide('dptrainImage', '');
    return undefined;
  }
  const tag = `localhost/dptrain:test-${process.pid}`;
  const seconds = await buildImage(tag);
  const size = Number((await podman(['image', 'inspect', tag, '--format', '{{.Size}}'])).stdout.trim());
  const base = Number((await podman(['image', 'inspect', BASE_IMAGE, '--format', '{{.Size}}'])).stdout.trim());
  console.log(`built ${tag} in ${seconds.toFixed(0)} s: ${(size / 1e6).toFixed(0)} MB, ${((size - base) / 1e6).toFixed(1)} MB over the base image`);
  project.provide('dptrainImage', tag);
  return async () => {
    await podman(['rmi', '-f', tag]);
  };
}
