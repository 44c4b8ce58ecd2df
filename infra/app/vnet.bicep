// The virtual network that the Function App joins. Its one subnet is delegated to the Flex
// Consumption plan, sends every outbound connection through a NAT gateway with one static
// public IP, and carries a Key Vault service endpoint so that the vault can admit this subnet
// and nothing else.

@description('Name of the virtual network.')
param vnetName string

@description('Name of the NAT gateway.')
param natGatewayName string

@description('Name of the static public IP address that all outbound traffic leaves from.')
param publicIpName string

@description('Name of the network security group on the integration subnet.')
param networkSecurityGroupName string

@description('Azure region of the network resources.')
param location string

@description('Tags applied to the network resources.')
param tags object = {}

@description('Address space of the virtual network, in CIDR notation.')
param addressPrefix string = '10.40.0.0/16'

@description('Address range of the Function App integration subnet, in CIDR notation, inside addressPrefix.')
param functionSubnetPrefix string = '10.40.0.0/24'

var functionSubnetName = 'function-app'

resource publicIp 'Microsoft.Network/publicIPAddresses@2024-05-01' = {
  name: publicIpName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Regional'
  }
  properties: {
    publicIPAddressVersion: 'IPv4'
    publicIPAllocationMethod: 'Static'
    idleTimeoutInMinutes: 4
  }
}

resource natGateway 'Microsoft.Network/natGateways@2024-05-01' = {
  name: natGatewayName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    idleTimeoutInMinutes: 4
    publicIpAddresses: [
      {
        id: publicIp.id
      }
    ]
  }
}

// No inbound rules are needed: VNet integration carries only the app's outbound traffic, and
// requests reach the app through its public endpoint, not through this subnet.
resource networkSecurityGroup 'Microsoft.Network/networkSecurityGroups@2024-05-01' = {
  name: networkSecurityGroupName
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: vnetName
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: functionSubnetName
        properties: {
          addressPrefix: functionSubnetPrefix
          // Flex Consumption apps integrate through a subnet delegated to Microsoft.App/environments.
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
          natGateway: {
            id: natGateway.id
          }
          networkSecurityGroup: {
            id: networkSecurityGroup.id
          }
          serviceEndpoints: [
            {
              service: 'Microsoft.KeyVault'
            }
          ]
          // Without default outbound access the NAT gateway is the subnet's only way out.
          defaultOutboundAccess: false
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

output vnetName string = vnet.name
output functionSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, functionSubnetName)
output outboundIpAddress string = publicIp.properties.ipAddress
