#!/usr/bin/env node
import '../dist/coordinator/cli.js';
