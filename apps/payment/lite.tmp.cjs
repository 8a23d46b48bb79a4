const Client = require('undici/lib/dispatcher/client');
const Agent = require('undici/lib/dispatcher/agent');
const request = require('undici/lib/api/api-request');
module.exports = { Client, Agent, request };
