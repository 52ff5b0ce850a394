// esbuild's file loader: importing a .wasm file gives the URL it is served at.
declare module '*.wasm' {
  const url: string;
  export default url;
}
