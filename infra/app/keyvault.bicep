// The Key Vault that holds the server key, its passphrase, the field-encryption key, the
// SendGrid key and the MongoDB connection string. Access is by Azure RBAC only, deleted
// secrets are recoverable for 90 days and cannot be purged early, and the firewall admits only
// the Function App subnet (through its service endpoint) and the operator's address, if given.

@description('Name of the Key Vault: 3 to 24 letters, digits and hyphens, globally unique.')
param name string

@description('Azure region of the Key Vault.')
param location string

@description('Tags applied to the Key Vault.')
param tags object = {}

@description('Resource id of the Function App integration subnet; it must carry the Microsoft.KeyVault service endpoint.')
param functionSubnetId string

@description('Public IPv4 address or CIDR range of the operator who runs `az keyvault secret set`. Empty admits no address besides the subnet.')
param operatorIpAddress string = ''

@description('Resource id of the Log Analytics workspace that receives the vault audit log.')
param logAnalyticsId string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    // Service endpoint rules apply only while public network access is enabled; the firewall
    // below still rejects every source that no rule names.
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'None'
      virtualNetworkRules: [
        {
          id: functionSubnetId
          ignoreMissingVnetServiceEndpoint: false
        }
      ]
      ipRules: empty(operatorIpAddress) ? [] : [
        {
          value: operatorIpAddress
        }
      ]
    }
  }
}

resource auditLog 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
