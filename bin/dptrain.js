#!/usr/bin/env node
import '../dist/coordinator/cli/cli.js';
