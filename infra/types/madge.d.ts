/** The part of madge's API that infra/import-cycles.ts uses (madge ships no types). */
declare module 'madge' {
  interface MadgeConfig {
    baseDir?: string;
    fileExtensions?: string[];
    tsConfig?: string;
    excludeRegExp?: RegExp[];
  }
  interface MadgeResult {
    /** Each file, relative to baseDir, with the files it imports (type-only imports included). */
    obj(): Record<string, string[]>;
    /** Each import cycle between files, as the files along it. */
    circular(): string[][];
  }
  function madge(path: string | string[], config?: MadgeConfig): Promise<MadgeResult>;
  export = madge;
}
